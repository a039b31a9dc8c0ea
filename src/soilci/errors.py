"""Errors of the operator CLI; ``exit_code`` follows ``soil_contracts.errors.ExitCode``."""

from soil_contracts.errors import ExitCode, SoilError


class SoilCIError(SoilError):
    """Root of soilci's errors (bad input: exit 2 unless a subclass says otherwise)."""


class ConfigError(SoilCIError):
    """Bad arguments, settings or repository state."""


class DockerUnavailable(SoilCIError):
    """No Docker engine answers."""

    exit_code = ExitCode.UNAVAILABLE


class LocalStagesUnavailable(SoilCIError):
    """``soilci pipeline --local`` in an environment without the ``local`` extra (the stages' own packages)."""

    exit_code = ExitCode.UNAVAILABLE


class TreeBusy(SoilCIError):
    """Another ``soilci pipeline`` run holds the working tree's lock."""

    exit_code = ExitCode.UNAVAILABLE


class BuildError(SoilCIError):
    """An image failed to build."""

    exit_code = ExitCode.BUILD_FAILED


class StageFailed(SoilCIError):
    """A pipeline stage exited non-zero; carries the stage's own exit code."""

    def __init__(self, stage: str, code: int, message: str = "") -> None:
        super().__init__(message or f"stage {stage!r} failed with exit code {code}")
        self.stage = stage
        self.exit_code = code


class GateRefused(SoilCIError):
    """A delivery check refused to go on (promote/rollback preconditions)."""

    exit_code = ExitCode.VERDICT
