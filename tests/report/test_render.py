"""One document, two formats: the Markdown comment and the HTML page say the same things."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.report.results import DRIFT_FAIL, DRIFT_PASS, make_repo, run_report


def test_html_page_carries_the_same_details_as_the_markdown(tmp_path, models, capsys):
    repo, sha = make_repo(tmp_path, models["weak"], models["good"], params="evaluate:\n  rmse_max: 5\n")
    _, md, _ = run_report(repo, sha, capsys)
    html = (repo / "out" / "report.html").read_text()
    for words in ("Benchmark metrics", "RMSE ceiling (", "Paired bootstrap", "Method: pca-ks, alpha 0.05",
                  "Versions compared", "A real change is one whose interval excludes 0."):
        assert words in md and words in html
    assert "| RMSE ceiling (`evaluate.rmse_max`) | | 5 |" in md
    assert "<tr><td>RMSE ceiling (<code>evaluate.rmse_max</code>)</td><td></td><td>5</td></tr>" in html
    # Each format draws its own marks: emoji in the comment, plain symbols on the page.
    assert "✅ better" in md and "<td class='better'>" in html and "✓ better" in html and "✅" not in html


CHROMIUM = next((c for c in ("chromium", "chromium-browser", "google-chrome") if shutil.which(c)), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason="no headless Chromium here")


def screenshot(html: Path, tmp_path: Path, width: int, height: int) -> np.ndarray:
    """``html`` rendered by headless Chromium at ``width`` x ``height``: RGB pixels, 0-255."""
    from matplotlib.image import imread

    png = tmp_path / "report.png"
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}", f"--window-size={width},{height}",
         html.as_uri()],
        check=True, capture_output=True, timeout=120,
    )
    return (imread(png)[..., :3] * 255).round().astype(int)


def rows_of(pixels: np.ndarray, rgb: tuple[int, int, int]) -> np.ndarray:
    """Pixel rows holding ``rgb`` (within 6 per channel)."""
    return np.nonzero(np.all(np.abs(pixels - rgb) <= 6, axis=-1).any(axis=1))[0]


@needs_chromium
def test_report_html_renders_with_verdict_badge_and_both_plots_above_the_fold(tmp_path, better_report):
    """Render report.html at 1280x900 and look for the verdict colour, the badge and both histograms."""
    repo = better_report[0]
    pixels = screenshot(repo / "out" / "report.html", tmp_path, 1280, 900)
    assert pixels.shape[:2] == (900, 1280)

    def rows_with(rgb: tuple[int, int, int]) -> np.ndarray:
        return rows_of(pixels, rgb)

    verdict, badge = rows_with((0x1A, 0x7F, 0x37)), rows_with((0x55, 0x55, 0x55))  # green text, badge key
    pr_bars, base_bars = rows_with((0x1F, 0x6F, 0xEB)), rows_with((0x8B, 0x94, 0x9E))
    assert verdict.size and verdict.min() < 80  # the verdict is the first thing on the page
    assert badge.size and badge.min() < 160
    assert pr_bars.size > 50 and base_bars.size > 50 and max(pr_bars.max(), base_bars.max()) < 900


LEVEL_COLOURS = {"ready": (0x1A, 0x7F, 0x37), "review": (0x9A, 0x67, 0x00), "block": (0xCF, 0x22, 0x2E),
                 "not_comparable": (0x82, 0x50, 0xDF)}
MUTED = (0x57, 0x60, 0x6A)  # the reason's colour


DRIFT_ACCEPTED = {**DRIFT_FAIL, "status": "warn", "acceptance": {
    "accepted": [{"batch": "lab-o", "rows": 46, "by": "ana.lead@example.org",
                  "reason": "new detector; its offset was checked against the lab's reference soils"}],
    "others": {"batches": ["lab-clean"], "rows": 46, "result": "no drift"}}}


@needs_chromium
@pytest.mark.parametrize(("case", "level", "title"), [
    ("worse", "block", "Do not merge"), ("drift", "block", "Do not merge"), ("first", "review", "Needs review"),
    ("accepted", "review", "Needs review"), ("better", "ready", "Ready to merge"),
    ("old-base", "not_comparable", "Not comparable")])
def test_decision_and_reason_stay_above_the_fold(tmp_path, models, capsys, request, case, level, title):
    """On a small laptop screen (1280x640) the verdict line and the reason are the first things drawn:
    each verdict, a drift failure (its plot comes first) and an accepted drift (a long reason)."""
    if case == "better":  # weak -> good, the drift gate passed: the session's report of that comparison
        repo = request.getfixturevalue("better_report")[0]
    else:
        weak, good = models["weak"], models["good"]
        old = ({k: v for k, v in weak[0].items() if k not in {"target", "unit", "benchmark_sha256"}}, weak[1])
        base, pr = {"worse": (good, weak), "drift": (weak, good), "first": (None, good), "accepted": (weak, good),
                    "old-base": (old, good)}[case]
        drift = {"drift": DRIFT_FAIL, "accepted": DRIFT_ACCEPTED}.get(case, DRIFT_PASS)
        repo, sha = make_repo(tmp_path, base, pr, pr_drift=drift)
        run_report(repo, sha, capsys, "--exit-zero")
    html = (repo / "out" / "report.html").read_text()
    assert "<header>" in html and f"var(--{level})" in html and title in html
    pixels = screenshot(repo / "out" / "report.html", tmp_path, 1280, 640)
    verdict, muted = rows_of(pixels, LEVEL_COLOURS[level]), rows_of(pixels, MUTED)
    assert verdict.size and verdict.min() < 60  # the verdict's colour opens the page
    text_rows = verdict[verdict < 60]
    assert muted.size and text_rows.min() < muted.min() < 140  # the reason right under the verdict line
    # The other verdicts' colours are not what the header shows.
    for other, rgb in LEVEL_COLOURS.items():
        if other != level:
            assert not (rows_of(pixels[:60], rgb).size > 20), other
    # The comment: verdict on line 1, the reason on line 3.
    md = (repo / "out" / "report.md").read_text().splitlines()
    assert md[0].startswith("## ") and title in md[0] and md[2].endswith(".")
    if case == "accepted":  # who accepted the drift, and why, is in the reason itself
        assert "accepted by ana.lead@example.org" in md[2] and "ana.lead@example.org" in html
