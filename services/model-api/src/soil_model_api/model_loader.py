"""Load the one model the service serves, from whichever source the environment names.

Sources come only from the environment (``MODEL_URI``, ``MODEL_DIR``, ``MODEL_API_REGISTERED_FILE``),
never from a request.
"""

from __future__ import annotations

from dataclasses import replace

from soil_model_api.config import RegistrySource, Settings
from soil_model_api.model_dir import load_from_dir
from soil_model_api.registry import load_from_registry
from soil_model_api.served_model import LoadedModel


def load_model(settings: Settings) -> LoadedModel:
    """Load the configured model, with the slot and image tag the settings give it."""
    source = settings.model_source()
    if isinstance(source, RegistrySource):
        model = load_from_registry(source, settings)
    else:
        model = load_from_dir(source)
    return replace(model, info=replace(model.info, slot=settings.slot, image_tag=settings.image_tag))
