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
