"""One ``soilci pipeline`` run per working tree at a time.

Two runs in one tree remove each other's outputs, reap each other's stage containers and record each
other's half-written files in dvc.lock. The lock is an OS file lock (``filelock``, ``flock`` on Linux)
on ``.dvc/tmp/soilci-pipeline.lock``, beside DVC's own lock files: the kernel releases it when its
holder exits, even by ``kill -9``, so a stale lock cannot block the next run. Who holds it (pid, host,
start time, command) is in ``soilci-pipeline.json`` beside it, for the refusal's message. As
``dvc repro`` refuses a second one, the second run fails at once (exit 3) rather than waiting.
"""

from __future__ import annotations

import os
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

from soil_contracts._record import Record
from soil_contracts.errors import ContractError
from soilci.errors import TreeBusy

LOCK_FILE = Path(".dvc") / "tmp" / "soilci-pipeline.lock"
HOLDER_FILE = LOCK_FILE.with_suffix(".json")


class LockHolder(Record):
    """``.dvc/tmp/soilci-pipeline.json``: the run that holds the working-tree lock."""

    kind: str = "pipeline lock holder"
    pid: int
    host: str
    started: str  # ISO 8601, UTC
    command: str


class TreeLock:
    """The working tree's pipeline lock, held from ``acquire`` until ``release`` (or process exit)."""

    def __init__(self, root: Path) -> None:
        from filelock import FileLock

        self.root = root
        self.path = root / LOCK_FILE
        # mode 0o666: the compose driver runs as root in the same tree as its owner's own runs.
        self._lock = FileLock(self.path, timeout=0, mode=0o666, thread_local=False)

    def acquire(self) -> LockHolder:
        """Take the lock and record this process as its holder.

        Raises:
            TreeBusy: another run holds it (exit 3); the message names its pid, host and start time.
        """
        from filelock import Timeout

        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except Timeout:
            raise TreeBusy(self._busy_message()) from None
        holder = LockHolder(pid=os.getpid(), host=socket.gethostname(),
                            started=datetime.now(UTC).isoformat(timespec="seconds"),
                            command=" ".join(["soilci", *sys.argv[1:]]) if sys.argv else "soilci pipeline")
        holder.save(self.root / HOLDER_FILE)
        return holder

    def release(self) -> None:
        """Give the lock up (its holder file stays: it only names whoever holds the lock now)."""
        self._lock.release(force=True)

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def _busy_message(self) -> str:
        where = f"{self.root}: another soilci pipeline run is using this working tree"
        try:
            holder = LockHolder.load(self.root / HOLDER_FILE)
        except ContractError:
            return f"{where} (holder unknown; lock {LOCK_FILE}). Wait for it to finish, or stop it"
        return (f"{where}: pid {holder.pid} on {holder.host}, started {holder.started} ({holder.command}). "
                f"Wait for it to finish, or stop it (kill -TERM {holder.pid}; it records where it stopped)")
