"""The trainer's error hierarchy; ``exit_code`` is what the CLI boundary returns."""

from soil_contracts.errors import ExitCode, SoilError


class SoilTrainerError(SoilError):
    """Base class of every trainer error (exit 2 unless a subclass says otherwise)."""


class ParamsError(SoilTrainerError):
    """params.yaml is missing, malformed, or names an unknown dataset, target or model."""


class DataError(SoilTrainerError):
    """An input data file is missing, unreadable, or does not hold what the stage needs."""


class GateError(SoilTrainerError):
    """A quality gate failed (e.g. benchmark RMSE above its ceiling)."""

    exit_code = ExitCode.VERDICT


class UsageError(SoilTrainerError):
    """The command was run where it must not be (e.g. ``register`` off the main branch)."""


class TrackingError(SoilTrainerError):
    """The MLflow tracking server did not answer after the bounded retry, or rejected a write."""

    exit_code = ExitCode.UNAVAILABLE
