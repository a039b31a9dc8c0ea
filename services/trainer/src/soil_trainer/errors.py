"""Errors that map to the CLI's exit codes."""


class SoilTrainerError(Exception):
    """Base class; ``exit_code`` is what ``main`` returns."""

    exit_code = 2


class ParamsError(SoilTrainerError):
    """params.yaml is missing, malformed, or names an unknown dataset, target or model."""


class DataError(SoilTrainerError):
    """An input data file is missing, unreadable, or does not hold what the stage needs."""


class GateError(SoilTrainerError):
    """A quality gate failed (e.g. benchmark RMSE above its ceiling)."""

    exit_code = 1


class UsageError(SoilTrainerError):
    """The command was run where it must not be (e.g. ``register`` off the main branch)."""


class TrackingError(SoilTrainerError):
    """The MLflow tracking server did not answer after the bounded retry, or rejected a write."""

    exit_code = 3
