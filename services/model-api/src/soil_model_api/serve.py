"""serve and check: run the app under uvicorn, or load the model once and self-check it."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from typing import TYPE_CHECKING

from soil_model_api.config import Settings

if TYPE_CHECKING:
    from soil_model_api.predict_asgi import PredictMiddleware

log = logging.getLogger(__name__)


def asgi_app(settings: Settings) -> PredictMiddleware:
    """The ASGI application ``serve`` runs: the FastAPI app (``.api``, whose lifespan loads the model) behind
    ``PredictMiddleware``, which answers POST /v1/predict before FastAPI.__call__ and passes the rest on.

    Raises:
        ConfigError: the model source is misconfigured (before anything starts).
    """
    from soil_model_api.app import create_app
    from soil_model_api.predict_asgi import PredictMiddleware

    settings.model_source()  # a misconfigured source fails here, before the port opens
    app = create_app(settings)
    return PredictMiddleware(app, app)


def uvicorn_options(settings: Settings) -> dict:
    """uvicorn's options in ``serve`` beside the application: one worker (the service is CPU-light per request
    and the host has two cores), the guarded request-head protocol, the keep-alive and concurrency limits."""
    from soil_model_api.protocol import guarded_protocol

    return {
        "host": settings.host,
        "port": settings.port,
        "workers": 1,
        "log_level": settings.log_level,
        "access_log": settings.access_log,
        "proxy_headers": False,
        "server_header": False,
        # Slow or endless request heads are cut off; idle keep-alive connections close; above
        # limit_concurrency connections or running requests, new requests get 503.
        "http": guarded_protocol(settings.head_timeout_seconds, settings.max_head_bytes),
        "timeout_keep_alive": settings.keep_alive_seconds,
        "limit_concurrency": settings.limit_concurrency,
    }


def serve(settings: Settings) -> int:
    """Run uvicorn on serve's application with ``uvicorn_options(settings)``."""
    import uvicorn

    uvicorn.run(asgi_app(settings), **uvicorn_options(settings))
    return 0


def check(settings: Settings) -> int:
    """Load the configured model and run its self-check; print what /v1/model would report."""
    from soil_model_api.model_loader import load_model
    from soil_model_api.served_model import run_self_check

    loaded = load_model(settings)
    result = run_self_check(loaded)
    info = asdict(loaded.info)
    info["bands"] = f"{len(loaded.bands)} bands: {loaded.bands[0]} ... {loaded.bands[-1]}"
    print(json.dumps({"model": info, "self_check": result}, indent=2))
    return 0
