"""Who owns what a run wrote: as root in someone else's tree, files go back to the tree's owner."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def chown_tree(path: Path, uid: int, gid: int) -> None:
    """``chown -R uid:gid path`` without following links; a missing path is left alone."""
    if not path.exists():
        return
    os.chown(path, uid, gid, follow_symlinks=False)
    if path.is_dir() and not path.is_symlink():
        for dirpath, dirnames, filenames in os.walk(path):
            for name in dirnames + filenames:
                os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)


def hand_back(root: Path, paths: Iterable[Path]) -> None:
    """As root in someone else's tree (the compose driver), give what the run wrote to the tree's owner."""
    st = root.stat()
    if os.getuid() != 0 or st.st_uid == 0:
        return
    for path in paths:
        chown_tree(path, st.st_uid, st.st_gid)
