"""Real spectra for the library tests: LimeSoDa SSP.460 rows, written by the tests in each file format."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from soil_contracts.library import Grid, LibrarySpec

UNITS = {"SOC_target": "%", "pH_target": "pH", "Clay_target": "%"}


@pytest.fixture(scope="session")
def ssp460() -> pd.DataFrame:
    """SSP.460 as LimeSoDa ships it (sample_id, fold, targets, wl_* in reflectance percent)."""
    from LimeSoDa import load_dataset

    raw = load_dataset("SSP.460")
    frame = raw["Dataset"].reset_index(drop=True)
    frame.insert(0, "sample_id", [f"SSP.460:{i}" for i in range(len(frame))])
    frame.insert(1, "fold", np.asarray(raw["Folds"]))
    return frame


@pytest.fixture(scope="session")
def spec() -> LibrarySpec:
    return LibrarySpec(grid=Grid(start=350, stop=2495, step=5))


def bands_of(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith("wl_")]
