"""The soil-trainer boundary: our errors keep their exit codes, anything else is a crash (70), never a verdict."""

from __future__ import annotations

import pytest

from soil_trainer import cli
from soil_trainer.errors import GateError, TrackingError


def raising(exc: BaseException):
    def command(args) -> int:
        raise exc

    return command


@pytest.mark.parametrize(
    ("exc", "code"),
    [(GateError("rmse too high"), 1), (TrackingError("no server"), 3), (RuntimeError("a bug"), 70)],
)
def test_exit_code_follows_the_error(monkeypatch, capsys, exc, code):
    monkeypatch.setitem(cli.COMMANDS, "prepare", raising(exc))
    assert cli.main(["prepare"]) == code
    assert f"soil-trainer prepare: {'internal error' if code == 70 else 'error'}" in capsys.readouterr().err


def test_usage_error_is_exit_2(capsys):
    assert cli.main(["train", "--no-such-flag"]) == 2


def test_every_verb_runs_with_the_thread_limit(monkeypatch):
    """SOIL_TRAINER_THREADS (default 1) caps the BLAS pools the verb uses; a bad value is exit 2 before it runs."""
    import numpy as np
    from threadpoolctl import threadpool_info

    seen: list[list[int]] = []

    def probe(args) -> int:
        np.ones((2, 2)) @ np.ones((2, 2))
        seen.append([p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"])
        return 0

    monkeypatch.setitem(cli.COMMANDS, "prepare", probe)
    monkeypatch.delenv(cli.THREADS_ENV, raising=False)
    assert cli.main(["prepare"]) == 0
    assert seen[-1] and set(seen[-1]) == {1}
    monkeypatch.setenv(cli.THREADS_ENV, "none")
    assert cli.main(["prepare"]) == 2 and len(seen) == 1
