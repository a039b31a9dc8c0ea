"""Atomic file output: a reader never sees a half-written report, record, model file or manifest."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temp path beside ``path``; rename it over ``path`` only if the block succeeds.

    The temp file gets the mode a plain ``open()`` would give (``0o666`` less the umask), so another
    user, such as a container's non-root user, can read the result.

    Raises:
        OSError: the folder cannot be created or written; nothing is left behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_text_atomic(path: Path | str, text: str) -> Path:
    """Write ``text`` to ``path`` all-or-nothing; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json_atomic(path: Path | str, data: Any, *, sort_keys: bool = False) -> Path:
    """Write ``data`` as indented JSON (with a final newline) all-or-nothing; returns ``path``."""
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=sort_keys) + "\n")
