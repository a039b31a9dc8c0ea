"""Transfers between the working tree and DVC's cache and remote: ``dvc pull`` (or ``checkout``) and ``dvc push``.

Each runs in this interpreter with DVC's own log lines written to the step's log file, not the terminal;
the step's one line (``pull``'s return value, which run.json records) says what DVC did.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from soilci.errors import ConfigError
from soilci.pipeline.dvc import DvcRepo, open_repo

# The loggers dvc.logger.setup() gives its console handlers, on import of dvc.
DVC_LOGGERS = ("dvc", "dvc_objects", "dvc_data")


@contextlib.contextmanager
def logged_to(stream) -> Iterator[None]:
    """DVC's own log lines go to ``stream`` (the step's log file) instead of the terminal while it runs.

    A first run's pull warns "No file hash info found ... It won't be created" for each output dvc.lock does
    not list yet: expected, and the step's one-line summary says what the pull did.
    """
    import logging

    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    loggers = [logging.getLogger(name) for name in DVC_LOGGERS]
    saved = [(logger.handlers[:], logger.propagate) for logger in loggers]
    for logger in loggers:
        logger.handlers, logger.propagate = [handler], False
    try:
        yield
    finally:
        for logger, (handlers, propagate) in zip(loggers, saved, strict=True):
            logger.handlers, logger.propagate = handlers, propagate


def _dvc_call(root: Path | DvcRepo, verb: str, log: Path, **kwargs) -> tuple[bool, str, object]:
    """Run a DVC repo operation here (no second interpreter start), its outcome appended to ``log``.

    Returns whether it succeeded, the error (``Type: message``, "" on success) and DVC's result."""
    with log.open("a") as fh, logged_to(fh):
        fh.write(f"$ dvc {verb} {kwargs}\n")
        try:
            with open_repo(root) as repo:
                if verb == "remote?":
                    return bool(repo.config["core"].get("remote")), "", None
                result = getattr(repo, verb)(**kwargs)
        except Exception as exc:  # noqa: BLE001 - DVC's errors (network, missing objects) are reported, not raised
            fh.write(f"{type(exc).__name__}: {exc}\n")
            return False, f"{type(exc).__name__}: {exc}", None
        fh.write(f"{result}\n")
        return True, "", result


def transfer_summary(result: object) -> str:
    """What a ``dvc pull``/``checkout`` result says it did, in DVC's own words: ``3 files fetched, 5 files
    added``, or ``nothing to fetch or write`` when the outputs already matched dvc.lock."""
    stats = result.get("stats", {}) if isinstance(result, dict) else {}
    done = [f"{stats[key]} file{'s' if stats[key] != 1 else ''} {key}"
            for key in ("fetched", "added", "modified", "deleted") if stats.get(key)]
    return ", ".join(done) if done else "nothing to fetch or write"


def pull(root: Path | DvcRepo, log: Path) -> str:
    """Bring cached outputs into the working tree: ``dvc pull`` from the remote, else ``dvc checkout``.

    Missing objects are not an error: a stage whose outputs cannot be fetched is reproduced.
    Outputs that differ from dvc.lock are replaced, as ``dvc repro`` would replace them.
    Returns what happened, for the run record.
    """
    has_remote, _, _ = _dvc_call(root, "remote?", log)
    # force: an output that differs from dvc.lock belongs to a stale stage, which reruns anyway.
    if has_remote:
        ok, why, result = _dvc_call(root, "pull", log, allow_missing=True, force=True)
        return f"pulled: {transfer_summary(result)}" if ok else f"pull incomplete ({why}); missing outputs are reproduced"
    ok, why, result = _dvc_call(root, "checkout", log, allow_missing=True, force=True)
    return f"checked out (no remote): {transfer_summary(result)}" if ok else f"checkout incomplete ({why})"


def push(root: Path | DvcRepo, log: Path) -> None:
    """``dvc push`` to the default remote. Raises ConfigError when there is none or the push fails."""
    has_remote, _, _ = _dvc_call(root, "remote?", log)
    if not has_remote:
        raise ConfigError("--push: no DVC remote is configured (dvc remote add -d NAME URL)")
    ok, why, _ = _dvc_call(root, "push", log)
    if not ok:
        raise ConfigError(f"dvc push failed: {why}; see {log}")
