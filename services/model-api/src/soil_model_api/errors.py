"""Errors that map to the CLI's exit codes."""


class ModelApiError(Exception):
    """Base class; ``exit_code`` is what ``main`` returns."""

    exit_code = 2


class ConfigError(ModelApiError):
    """The environment does not say where the model is, or says it in two ways."""


class ModelLoadError(ModelApiError):
    """The model directory or registry version is missing, unreadable or not a servable model."""
