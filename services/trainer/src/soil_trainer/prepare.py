"""prepare stage: cut a LimeSoDa dataset into reference, benchmark and incoming Parquet files."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from soil_contracts.bands import band_columns
from soil_contracts.files import atomic_path
from soil_trainer.config import PrepareParams
from soil_trainer.dataset import load_limesoda
from soil_trainer.errors import DataError, ParamsError
from soil_trainer.tables import BENCHMARK, INCOMING, REFERENCE, SAMPLE_ID, read_table

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedData:
    reference: pd.DataFrame
    benchmark: pd.DataFrame
    incoming: pd.DataFrame


def split_dataset(params: PrepareParams, root: Path = Path(".")) -> PreparedData:
    """Split by LimeSoDa's own folds: benchmark folds are never trained on, whatever the PR brings."""
    overlap = set(params.benchmark_folds) & set(params.incoming_folds)
    if overlap:
        raise ParamsError(f"prepare.incoming_folds: folds {sorted(overlap)} are also benchmark folds")
    data = load_limesoda(params.dataset, params.target)
    in_benchmark = pd.Series(data.folds).isin(params.benchmark_folds).to_numpy()
    benchmark = data.frame[in_benchmark]

    if params.incoming_batch is None:
        in_incoming = pd.Series(data.folds).isin(params.incoming_folds).to_numpy()
        incoming = data.frame[in_incoming]
        reference = data.frame[~in_benchmark & ~in_incoming]
    else:
        # A batch replaces the incoming folds, which then stay in the reference set.
        incoming = read_batch(root / params.incoming_batch, data.target, data.bands)
        reference = data.frame[~in_benchmark]
        clash = set(incoming[SAMPLE_ID]) & set(benchmark[SAMPLE_ID])
        if clash:
            raise DataError(
                f"{params.incoming_batch}: {len(clash)} samples are in the benchmark set "
                f"(e.g. {min(clash)}); the benchmark is never trained on"
            )
    return PreparedData(
        reference=reference.reset_index(drop=True),
        benchmark=benchmark.reset_index(drop=True),
        incoming=incoming.reset_index(drop=True),
    )


def read_batch(path: Path, target: str, bands: list[str]) -> pd.DataFrame:
    """Read an incoming batch and check it has the dataset's target and bands."""
    frame = read_table(path)
    missing = [c for c in [target, *bands] if c not in frame.columns]
    if missing:
        head = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise DataError(f"{path}: missing {len(missing)} required columns: {head}")
    extra_bands = sorted(set(band_columns(frame.columns)) - set(bands))
    if extra_bands:
        raise DataError(f"{path}: bands not in the dataset: {', '.join(extra_bands[:5])}")
    if SAMPLE_ID in frame.columns:
        ids = frame[SAMPLE_ID].astype(str).reset_index(drop=True)
    else:
        ids = pd.Series([f"{path.stem}:{i}" for i in range(len(frame))], name=SAMPLE_ID)
    try:
        values = frame[[target, *bands]].astype(float).reset_index(drop=True)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: non-numeric values in target or band columns ({exc})") from exc
    return pd.concat([ids, values], axis=1)


def write_prepared(prepared: PreparedData, out_dir: Path) -> dict[str, Path]:
    """Write all three files, each through a temp file and rename."""
    outputs = {
        REFERENCE: prepared.reference,
        BENCHMARK: prepared.benchmark,
        INCOMING: prepared.incoming,
    }
    written = {}
    for name, frame in outputs.items():
        path = Path(out_dir) / name
        with atomic_path(path) as tmp:
            frame.to_parquet(tmp, index=False)
        written[name] = path
        log.info("wrote %s (%d rows x %d columns)", path, *frame.shape)
    return written
