"""The report's images: prediction-error histograms and predicted-vs-observed scatters of both sides
(error = predicted - observed everywhere), and the drift gate's plot."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from soil_contracts.files import atomic_path
from soilci.report.drift import DriftResult
from soilci.report.inputs import Revision

PR_COLOUR, BASE_COLOUR = "#1f6feb", "#8b949e"


def reset_assets(assets: Path) -> None:
    """Empty (or create) the folder of images beside report.md, so no image of an earlier report stays."""
    if assets.exists():
        shutil.rmtree(assets)
    assets.mkdir(parents=True)


def _sides(pr: Revision, base: Revision, stem: str) -> list[tuple[Revision, str, str]]:
    """(side, file name, colour) of each side with predictions: ``<stem>.png`` for the PR, ``<stem>_base.png``."""
    return [(s, f"{stem}.png" if s is pr else f"{stem}_base.png", c)
            for s, c in ((pr, PR_COLOUR), (base, BASE_COLOUR)) if s.predictions is not None]


def _draw_each(sides, base: Revision, assets: Path, draw: Callable) -> dict[str, Path]:
    """One figure per side, ``draw(ax, side, colour)`` filling it, saved atomically as a PNG in ``assets``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = {}
    for side, name, colour in sides:
        fig, ax = plt.subplots(figsize=(4.6, 2.9), dpi=110)
        draw(ax, side, colour)
        fig.tight_layout()
        path = assets / name
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
        plt.close(fig)
        written[side.label if side is base else "PR"] = path
    return written


def plot_errors(pr: Revision, base: Revision, assets: Path) -> dict[str, Path]:
    """Prediction-error histograms of the PR (and the base), on the same axes so they compare.

    Returns:
        "PR" and/or the base's label -> PNG in ``assets`` (prediction_error.png,
        prediction_error_base.png); a side without predictions has no image.
    """
    sides = _sides(pr, base, "prediction_error")
    if not sides:
        return {}
    errors = np.concatenate([s.predictions["error"].to_numpy(float) for s, _, _ in sides])
    edges = np.histogram_bin_edges(errors, bins=20)
    top = max(np.histogram(s.predictions["error"], bins=edges)[0].max() for s, _, _ in sides) * 1.15

    def draw(ax, side: Revision, colour: str) -> None:
        err = side.predictions["error"].to_numpy(float)
        ax.hist(err, bins=edges, color=colour, edgecolor="white")
        ax.axvline(0, color="black", lw=0.8)
        ax.axvline(err.mean(), color="#d29922", lw=1.2, ls="--", label=f"bias {err.mean():+.3f}")
        ax.set_ylim(0, top)
        ax.set_xlabel("predicted - observed")
        ax.set_ylabel("benchmark samples")
        rmse = float(np.sqrt(np.mean(err**2)))
        ax.set_title(f"{side.label} ({side.short}): RMSE {rmse:.3f}, n={len(err)}", fontsize=10)
        ax.legend(fontsize=8, frameon=False)

    return _draw_each(sides, base, assets, draw)


def plot_predicted_vs_observed(pr: Revision, base: Revision, assets: Path) -> dict[str, Path]:
    """Predicted against observed benchmark values of the PR (and the base), same axes, with the 1:1 line.

    Returns:
        "PR" and/or the base's label -> PNG in ``assets`` (predicted_vs_observed.png,
        predicted_vs_observed_base.png); a side without predictions has no image.
    """
    sides = _sides(pr, base, "predicted_vs_observed")
    if not sides:
        return {}
    values = np.concatenate([s.predictions[["observed", "predicted"]].to_numpy(float).ravel() for s, _, _ in sides])
    lo, hi = float(values.min()), float(values.max())
    pad = 0.04 * (hi - lo or 1.0)
    lo, hi = lo - pad, hi + pad

    def draw(ax, side: Revision, colour: str) -> None:
        obs, pred = side.predictions["observed"].to_numpy(float), side.predictions["predicted"].to_numpy(float)
        err = pred - obs
        ax.plot([lo, hi], [lo, hi], color="black", lw=0.8, label="1:1")
        ax.scatter(obs, pred, s=12, alpha=0.8, color=colour)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_xlabel("observed")
        ax.set_ylabel("predicted")
        ax.set_title(f"{side.label} ({side.short}): bias {err.mean():+.3f}, n={len(err)}", fontsize=10)
        ax.legend(fontsize=8, frameon=False, loc="upper left")

    return _draw_each(sides, base, assets, draw)


def copy_drift_plot(drift: DriftResult, assets: Path) -> Path | None:
    """The drift gate's plot copied to ``assets``/drift.png; None when the gate drew none."""
    if drift.plot is None:
        return None
    path = assets / "drift.png"
    shutil.copyfile(drift.plot, path)
    return path
