"""Fixtures of the report tests: two real models' benchmark results."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.report.results import fit_predict


@pytest.fixture(scope="module")
def models(prepared_data: Path) -> dict[str, tuple[dict, pd.DataFrame]]:
    """A weak (1 PLS component) and a good (8) model: metrics.json content and predictions.csv rows."""
    return {"weak": fit_predict(prepared_data, 1), "good": fit_predict(prepared_data, 8)}
