"""Fixtures of the drift tests: small real slices, the prepared split, and the CLI run on files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from soil_drift.cli import main


@pytest.fixture(scope="module")
def slices(prepared_data) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Small real slices (30 and 25 rows, every band) keep these tests fast."""
    ref = pd.read_parquet(prepared_data / "reference.parquet").head(30)
    cand = pd.read_parquet(prepared_data / "incoming.parquet").head(25)
    return ref, cand


@pytest.fixture(scope="module")
def reference(prepared_data) -> pd.DataFrame:
    return pd.read_parquet(prepared_data / "reference.parquet")


@pytest.fixture(scope="module")
def incoming(prepared_data) -> pd.DataFrame:
    return pd.read_parquet(prepared_data / "incoming.parquet")


@pytest.fixture(scope="module")
def spectra(reference, incoming) -> tuple[np.ndarray, np.ndarray]:
    """The prepared split's (n, n_bands) float32 reference and candidate spectra (wl_* columns)."""
    bands = [c for c in reference.columns if c.startswith("wl_")]
    return reference[bands].to_numpy(np.float32), incoming[bands].to_numpy(np.float32)


@pytest.fixture
def run_bad(tmp_path: Path, capsys) -> Callable[..., tuple[int, str]]:
    """Run ``check`` on bad input asking for both outputs; assert none is written; return code, stderr."""

    def run(ref, cand, *extra: str) -> tuple[int, str]:
        paths = []
        for name, item in (("reference", ref), ("candidate", cand)):
            if isinstance(item, Path):
                paths.append(item)
                continue
            path = tmp_path / f"{name}.parquet"
            item.to_parquet(path, index=False)
            paths.append(path)
        out_dir = tmp_path / "out"
        code = main(["check", *map(str, paths), "--out", str(out_dir / "drift.json"),
                     "--plot", str(out_dir / "drift.png"), *extra])
        err = capsys.readouterr().err
        assert not out_dir.exists() or not any(out_dir.iterdir()), "bad input must write nothing"
        return code, err

    return run
