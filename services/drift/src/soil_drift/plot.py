"""drift.png: mean spectra with the moved regions shaded, their difference, the key property, the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from soil_drift.verdict import NO_CANDIDATE, NO_REFERENCE, DriftVerdict

REFERENCE_COLOUR = "#1f77b4"
CANDIDATE_COLOUR = "#d62728"
REGION_COLOURS = {"values": "#ff7f0e", "residual": "#9467bd"}
STATUS_COLOURS = {"pass": "#2ca02c", "warn": "#ff7f0e", "fail": "#d62728", NO_CANDIDATE: "#7f7f7f",
                  NO_REFERENCE: "#7f7f7f"}


def _shade(ax, verdict: DriftVerdict) -> None:
    view = verdict.spectra
    step = np.median(np.abs(np.diff(view.positions))) if len(view.positions) > 1 else 1.0
    for region in verdict.regions:
        lo, hi = sorted((region.start, region.end))
        ax.axvspan(lo - step / 2, hi + step / 2, color=REGION_COLOURS[region.basis], alpha=0.25, lw=0)


def _spectra_panels(ax_mean, ax_diff, verdict: DriftVerdict) -> None:
    view = verdict.spectra
    if view is None:
        for ax in (ax_mean, ax_diff):
            ax.text(0.5, 0.5, "no spectral bands", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
        return
    x = view.positions
    label = "wavenumber (cm$^{-1}$)" if view.unit == "cm-1" else "wavelength (nm)"
    ax_mean.plot(x, view.reference_mean, color=REFERENCE_COLOUR, lw=1.2,
                 label=f"reference mean (n={verdict.inputs.n_reference})")
    ax_mean.plot(x, view.candidate_mean, color=CANDIDATE_COLOUR, lw=1.2,
                 label=f"candidate mean (n={verdict.inputs.n_candidate})")
    _shade(ax_mean, verdict)
    ax_mean.set_xlabel(label)
    ax_mean.set_ylabel("signal")
    ax_mean.set_title("Mean spectra (shaded: bands that moved)")

    diff = view.candidate_mean - view.reference_mean
    ax_diff.fill_between(x, -2 * view.difference_se, 2 * view.difference_se, color="0.85",
                         label="±2 standard errors")
    ax_diff.plot(x, diff, color="black", lw=1.0, label="candidate − reference")
    ax_diff.axhline(0, color="0.5", lw=0.6)
    _shade(ax_diff, verdict)
    ax_diff.set_xlabel(label)
    ax_diff.set_ylabel("difference of means")
    ax_diff.set_title("Where the mean spectrum moved")

    from matplotlib.patches import Patch

    handles, _ = ax_mean.get_legend_handles_labels()
    bases = sorted({r.basis for r in verdict.regions})
    handles += [Patch(color=REGION_COLOURS[b], alpha=0.25,
                      label="moved values" if b == "values" else "moved off the usual spectral shapes")
                for b in bases]
    ax_mean.legend(handles=handles, fontsize=7, loc="best")
    ax_diff.legend(fontsize=7, loc="best")
    if len(x) > 1 and x[0] > x[-1]:  # MIR spectra run from high to low wavenumber
        ax_mean.invert_xaxis()
        ax_diff.invert_xaxis()


def _key_panel(ax, verdict: DriftVerdict) -> None:
    key = verdict.inputs.key_column
    if key is None:
        ax.text(0.5, 0.5, "no numeric property column", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    ref, cand = verdict.inputs.numeric[key]  # the values present; pending ones are counted in the legend
    missing = verdict.inputs.missing.get(key, (0, 0))
    sides = [(values, colour, label + (f" ({n} missing)" if n else ""))
             for values, colour, label, n in ((ref, REFERENCE_COLOUR, "reference", missing[0]),
                                              (cand, CANDIDATE_COLOUR, "candidate", missing[1]))
             if values.size]
    if not sides:
        ax.text(0.5, 0.5, f"{key}: no value in either file", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    bins = np.histogram_bin_edges(np.concatenate([values for values, _, _ in sides]),
                                  bins=min(30, max(8, len(ref) // 10)))
    for values, colour, label in sides:
        ax.hist(values, bins=bins, density=True, alpha=0.45, color=colour, label=label)
    result = next((t for t in verdict.tests if t.name == key), None)
    untested = next((u for u in verdict.untested if u.name == key), None)
    if result is not None:
        ax.set_title(f"{key}: KS D={result.statistic:.2f}, Holm p={result.p_adjusted:.2g}")
    elif untested is not None:
        ax.set_title(f"{key}: not tested\n({untested.reason})", fontsize=9)
    ax.set_xlabel(key)
    ax.set_ylabel("density")
    ax.legend(fontsize=7)


def _tests_panel(ax, verdict: DriftVerdict) -> None:
    shown = sorted(verdict.tests, key=lambda t: t.p_value)[:12][::-1]
    if not shown:
        ax.set_axis_off()
        return
    scores = [-np.log10(max(t.p_value, 1e-300)) for t in shown]
    colours = [CANDIDATE_COLOUR if t.drifted(verdict.alpha) else "0.6" for t in shown]
    ax.barh(range(len(shown)), np.minimum(scores, 50), color=colours)
    ax.set_yticks(range(len(shown)), [t.name for t in shown], fontsize=7)
    threshold = verdict.alpha / len(verdict.tests)
    ax.axvline(-np.log10(threshold), color="black", ls="--", lw=0.8,
               label=f"Holm threshold of the smallest p ({threshold:.2g})")
    ax.set_xlabel("−log10 p (capped at 50); red: drifted")
    ax.set_title(f"Most significant of {len(verdict.tests)} tests")
    ax.legend(fontsize=7, loc="lower right")


def plot_verdict(verdict: DriftVerdict, path: Path) -> None:
    """Render the verdict to a PNG at ``path`` (the caller makes the write atomic)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if verdict.status in (NO_CANDIDATE, NO_REFERENCE):
        _plot_no_candidate(plt, verdict, path)
        return
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5), gridspec_kw={"width_ratios": [2.2, 1]})
    _spectra_panels(axes[0, 0], axes[1, 0], verdict)
    _key_panel(axes[0, 1], verdict)
    _tests_panel(axes[1, 1], verdict)
    fig.suptitle(f"Drift gate: {verdict.status.upper()}", color=STATUS_COLOURS[verdict.status],
                 fontsize=14, fontweight="bold")
    fig.text(0.5, 0.925, _wrap(verdict.summary), ha="center", va="top", fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.89))
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


def _plot_no_candidate(plt, verdict: DriftVerdict, path: Path) -> None:
    """A figure that says there was nothing to test, so the declared output exists all the same."""
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.set_axis_off()
    ax.text(0.5, 0.5, f"{_wrap(verdict.summary, 80)}\nReference: {verdict.inputs.n_reference} rows; "
            f"candidate: {verdict.inputs.n_candidate} rows.", ha="center", va="center", fontsize=11,
            transform=ax.transAxes)
    title = verdict.status.upper().replace("_", " ")
    fig.suptitle(f"Drift gate: {title}", color=STATUS_COLOURS[verdict.status], fontsize=14, fontweight="bold")
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


def _wrap(text: str, width: int = 170) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))
