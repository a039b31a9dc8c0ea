"""The one place that knows LimeSoDa's layout: targets, folds, and which columns are spectra."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from soil_contracts.bands import band_columns
from soil_trainer.errors import ParamsError
from soil_trainer.tables import SAMPLE_ID


@dataclass(frozen=True)
class SoilDataset:
    """A LimeSoDa dataset reduced to sample ids, one target and the spectral bands."""

    name: str
    frame: pd.DataFrame  # sample_id, target, bands...
    folds: np.ndarray
    target: str
    bands: list[str]


def available_datasets() -> list[str]:
    from LimeSoDa import list_datasets

    return [d for d in list_datasets() if d != "Overview_Datasets"]


def load_limesoda(name: str, target: str) -> SoilDataset:
    """Load a LimeSoDa dataset; unknown ids, targets or datasets without spectra are ParamsErrors."""
    known = available_datasets()
    if name not in known:
        raise ParamsError(f"prepare.dataset: unknown LimeSoDa dataset {name!r}; known: {', '.join(known)}")
    from LimeSoDa import load_dataset

    raw = load_dataset(name)
    data: pd.DataFrame = raw["Dataset"]
    targets = [c for c in data.columns if str(c).endswith("_target")]
    if target not in targets:
        raise ParamsError(f"prepare.target: {target!r} is not a target of {name}; choose one of {targets}")
    bands = band_columns(data.columns)
    if not bands:
        raise ParamsError(f"prepare.dataset: {name} has no spectral bands (wl_*/wn_* columns)")
    frame = pd.DataFrame({SAMPLE_ID: [f"{name}:{i}" for i in data.index]})
    frame[target] = data[target].to_numpy(dtype=float)
    frame = pd.concat([frame, data[bands].reset_index(drop=True).astype(float)], axis=1)
    return SoilDataset(name=name, frame=frame, folds=np.asarray(raw["Folds"]), target=target, bands=bands)
