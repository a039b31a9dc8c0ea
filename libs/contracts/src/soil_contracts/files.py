"""Atomic file output: a reader never sees a half-written report, record, model file or manifest."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
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
    with _temp_beside(path) as tmp_path:
        yield tmp_path
        os.replace(tmp_path, path)


@contextlib.contextmanager
def atomic_paths(paths: Sequence[Path | str | None]) -> Iterator[list[Path | None]]:
    """All outputs of one command, all-or-nothing: a temp path per output, all put in place or none.

    Each destination is checked first (its folder can be made, it is not a directory), so a bad
    one fails before the caller computes or writes anything. After the block, every existing
    destination is set aside, then each temp file is renamed over its destination; if any rename
    fails, the ones already done are undone and the old files restored. ``None`` entries (an output
    the caller does not write, e.g. stdout) yield ``None``.

    Raises:
        OSError: a destination is a directory or its folder cannot be made or written (``filename``
            names it); no destination has changed.
    """
    dests = [Path(p) if p is not None else None for p in paths]
    targets = [d for d in dests if d is not None]
    if len({d.resolve() for d in targets}) != len(targets):
        raise OSError(errno.EINVAL, "the same file is named for two outputs", str(targets[0]))
    for dest in targets:
        if dest.is_dir():
            raise IsADirectoryError(errno.EISDIR, "Is a directory", str(dest))
        existing = next(parent for parent in dest.absolute().parents if parent.exists())
        if not existing.is_dir():  # a file where a folder must go: refuse before making any folder
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(existing))
    with contextlib.ExitStack() as stack:
        temps = [stack.enter_context(_temp_beside(d)) if d is not None else None for d in dests]
        yield temps
        pairs = [(t, d) for t, d in zip(temps, dests, strict=True) if d is not None]
        for _, dest in pairs:  # the block may have made one a directory meanwhile: check again, change nothing
            if dest.is_dir():
                raise IsADirectoryError(errno.EISDIR, "Is a directory", str(dest))
        _replace_all(pairs)


@contextlib.contextmanager
def _temp_beside(path: Path) -> Iterator[Path]:
    """A temp file beside ``path`` with the mode ``open()`` would give; removed unless renamed away."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        yield tmp_path
    finally:
        tmp_path.unlink(missing_ok=True)


def _replace_all(pairs: list[tuple[Path, Path]]) -> None:
    """Rename each temp over its destination; on a failure, undo the renames already done."""
    backups: dict[Path, Path] = {}
    done: list[Path] = []
    try:
        for _, dest in pairs:
            if dest.exists():
                fd, backup = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".old", dir=dest.parent)
                os.close(fd)
                os.replace(dest, backup)
                backups[dest] = Path(backup)
        for tmp, dest in pairs:
            os.replace(tmp, dest)
            done.append(dest)
    except OSError:
        for dest in done:
            dest.unlink(missing_ok=True)
        for dest, backup in backups.items():
            os.replace(backup, dest)
        raise
    finally:
        for backup in backups.values():
            backup.unlink(missing_ok=True)


def write_text_atomic(path: Path | str, text: str) -> Path:
    """Write ``text`` to ``path`` all-or-nothing; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json_atomic(path: Path | str, data: Any, *, sort_keys: bool = False) -> Path:
    """Write ``data`` as indented JSON (with a final newline) all-or-nothing; returns ``path``."""
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=sort_keys) + "\n")
