"""One document, two formats: the Markdown comment and the HTML page say the same things."""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest

from tests.report.results import make_repo, run_report


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


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason="no headless Chromium here")
def test_report_html_renders_with_verdict_badge_and_both_plots_above_the_fold(tmp_path, models, capsys):
    """Render report.html at 1280x900 and look for the verdict colour, the badge and both histograms."""
    from matplotlib.image import imread

    repo, sha = make_repo(tmp_path, models["weak"], models["good"])
    run_report(repo, sha, capsys)
    png = tmp_path / "report.png"
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}", "--window-size=1280,900",
         (repo / "out" / "report.html").as_uri()],
        check=True, capture_output=True, timeout=120,
    )
    pixels = (imread(png)[..., :3] * 255).round().astype(int)
    assert pixels.shape[:2] == (900, 1280)

    def rows_with(rgb: tuple[int, int, int]) -> np.ndarray:
        return np.nonzero(np.all(np.abs(pixels - rgb) <= 6, axis=-1).any(axis=1))[0]

    verdict, badge = rows_with((0x1A, 0x7F, 0x37)), rows_with((0x55, 0x55, 0x55))  # green text, badge key
    pr_bars, base_bars = rows_with((0x1F, 0x6F, 0xEB)), rows_with((0x8B, 0x94, 0x9E))
    assert verdict.size and verdict.min() < 80  # the verdict is the first thing on the page
    assert badge.size and badge.min() < 160
    assert pr_bars.size > 50 and base_bars.size > 50 and max(pr_bars.max(), base_bars.max()) < 900
