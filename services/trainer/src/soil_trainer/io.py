"""Atomic file output and tabular input shared by the stages."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from soil_trainer.errors import DataError


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; rename it over ``path`` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600; give the final file the mode a plain open() would (other users,
    # such as a container's non-root user, must be able to read it).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


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
