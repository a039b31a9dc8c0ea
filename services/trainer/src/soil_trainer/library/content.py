"""Content identity of spectra: a batch's hash, and exact or near-duplicate samples by distance.

Distance between two spectra on the canonical grid: the root-mean-square difference over the grid's
bands, in the canonical scale's units (e.g. reflectance percent). On LimeSoDa SSP.460 (460 distinct
topsoil samples, vis-NIR) the closest two distinct samples are 0.144 apart (1st percentile of nearest
neighbours 0.163, median 0.36); the library's default threshold, 0.05, is a third of the closest pair,
so re-measurements of one sample after re-import or rounding are caught and distinct soils are not.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from soil_contracts.library import SAMPLE_ID


def content_sha256(frame: pd.DataFrame) -> str:
    """sha256 over the column names, text columns (ids) as UTF-8 and every number as little-endian float64.

    Independent of the file format: the same table read from Parquet or rebuilt in memory hashes the same.
    """
    digest = hashlib.sha256()
    for column in frame.columns:
        digest.update(str(column).encode() + b"\0")
        series = frame[column]
        if column == SAMPLE_ID or not pd.api.types.is_numeric_dtype(series.dtype):
            digest.update("\0".join(series.astype(str)).encode())
        else:
            digest.update(np.ascontiguousarray(series.to_numpy(dtype="<f8", na_value=np.nan)).tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class Duplicate:
    """Sample ``sample`` of the new rows is within the threshold of ``of`` (an existing sample)."""

    sample: str
    of: str
    of_batch: str
    rms: float


def rms_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, p) and (m, p) spectra -> (n, m) root-mean-square differences."""
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.clip(sq, 0.0, None) / a.shape[1])


def find_duplicates(
    new_ids: np.ndarray, new: np.ndarray, old_ids: np.ndarray, old: np.ndarray, old_batch: np.ndarray,
    threshold: float, chunk: int = 512,
) -> list[Duplicate]:
    """Each new spectrum's nearest old spectrum, when closer than ``threshold`` (RMS, canonical units)."""
    found: list[Duplicate] = []
    if len(new) == 0 or len(old) == 0:
        return found
    for start in range(0, len(new), chunk):
        d = rms_distances(new[start:start + chunk], old)
        nearest = d.argmin(axis=1)
        for i, j in enumerate(nearest):
            if d[i, j] < threshold:
                found.append(Duplicate(str(new_ids[start + i]), str(old_ids[j]), str(old_batch[j]), float(d[i, j])))
    return found
