"""The package's one error hierarchy; each error's ``exit_code`` is what the CLI returns."""

from soil_contracts.errors import ExitCode, SoilError


class ModelApiError(SoilError):
    """Root of soil-model-api's errors: bad configuration or model (exit 2) unless a subclass says otherwise."""

    exit_code = ExitCode.BAD_INPUT


class ConfigError(ModelApiError):
    """The environment does not say where the model is, says it in two ways, or names a bad record."""


class ModelLoadError(ModelApiError):
    """The model directory or registry version is missing, unreadable or not a servable model."""


class RegistryUnavailable(ModelLoadError):
    """The MLflow registry did not answer (exit 3); the service keeps retrying."""

    exit_code = ExitCode.UNAVAILABLE


class UntrustedModel(ModelLoadError):
    """The model was refused before loading (exit 5): not the digest registered, or a format that runs code."""

    exit_code = ExitCode.UNTRUSTED_MODEL
