"""Errors of the operator CLI; ``exit_code`` is what ``main`` returns."""


class SoilCIError(Exception):
    exit_code = 2


class ConfigError(SoilCIError):
    """Bad arguments, settings or repository state."""


class DockerUnavailable(SoilCIError):
    """No Docker engine answers."""

    exit_code = 3


class BuildError(SoilCIError):
    """An image failed to build."""

    exit_code = 4


class StageFailed(SoilCIError):
    """A pipeline stage exited non-zero; carries the stage's own exit code."""

    def __init__(self, stage: str, code: int, message: str = "") -> None:
        super().__init__(message or f"stage {stage!r} failed with exit code {code}")
        self.stage = stage
        self.exit_code = code


class GateRefused(SoilCIError):
    """A delivery check refused to go on (promote/rollback preconditions)."""

    exit_code = 1
