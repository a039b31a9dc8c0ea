"""The stages' data files: their names, reading them, and the checks every stage applies to a frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from soil_contracts.bands import band_columns
from soil_trainer.errors import DataError

REFERENCE = "reference.parquet"
BENCHMARK = "benchmark.parquet"
INCOMING = "incoming.parquet"
TRAINING = "training.parquet"
LIBRARY_SUMMARY = "library.json"
SAMPLE_ID = "sample_id"


def read_table(path: Path) -> pd.DataFrame:
    """Read a Parquet or CSV file, turning every failure into a DataError that names the file."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    try:
        if path.suffix.lower() == ".csv":
            frame = pd.read_csv(path)
        elif path.suffix.lower() in {".parquet", ".pq"}:
            frame = pd.read_parquet(path)
        else:
            raise DataError(f"{path}: unsupported file type {path.suffix!r} (use .parquet or .csv)")
    except DataError:
        raise
    except Exception as exc:  # pyarrow/pandas raise many types for a corrupt file
        raise DataError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from exc
    if frame.empty:
        raise DataError(f"{path}: no rows")
    return frame


def check_frame(frame: pd.DataFrame, path: Path, target: str, bands: list[str] | None = None) -> list[str]:
    """The target and band columns must be there and numeric, bands finite; returns the frame's bands.

    Raises:
        DataError: a column is missing or not numeric, the bands differ from ``bands`` (when
            given), or a row has a missing or infinite band value (spectra are never imputed).
    """
    found = band_columns(frame.columns)
    if target not in frame.columns:
        raise DataError(f"{path}: no target column {target!r} (prepare.target)")
    if SAMPLE_ID not in frame.columns:
        raise DataError(f"{path}: no {SAMPLE_ID} column")
    if not found:
        raise DataError(f"{path}: no spectral band columns (wl_*/wn_*)")
    if bands is not None and found != bands:
        missing = [b for b in bands if b not in found]
        detail = f"missing {', '.join(missing[:5])}" if missing else "different band order or extra bands"
        raise DataError(f"{path}: bands differ from {REFERENCE} ({detail})")
    non_numeric = [c for c in [target, *found] if not pd.api.types.is_numeric_dtype(frame[c])]
    if non_numeric:
        raise DataError(f"{path}: non-numeric columns: {', '.join(non_numeric[:5])}")
    bad = frame[found].isna().any(axis=1) | ~np.isfinite(frame[found].to_numpy(dtype=float)).all(axis=1)
    if bad.any():
        raise DataError(
            f"{path}: {int(bad.sum())} rows have missing or infinite band values "
            f"(e.g. {frame.loc[bad, SAMPLE_ID].iloc[0]}); spectra are never imputed"
        )
    return found
