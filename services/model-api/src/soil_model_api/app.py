"""create_app: the FastAPI application around one model slot, loaded in the background at start."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager

import orjson
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from fastapi_offline import FastAPIOffline

from soil_contracts.library import Scale
from soil_contracts.redact import redact
from soil_model_api.body import BodyGate
from soil_model_api.config import Settings, get_settings
from soil_model_api.domain import DomainJudge
from soil_model_api.errors import ConfigError
from soil_model_api.live_drift import check_on_schedule, live_drift_for
from soil_model_api.metrics import MetricsMiddleware, ServiceMetrics
from soil_model_api.model_loader import load_model
from soil_model_api.predict_asgi import PredictMiddleware
from soil_model_api.problems import InvalidRequest
from soil_model_api.routes import drift, health, predict
from soil_model_api.routes import model as model_routes
from soil_model_api.schemas import predict_request_body
from soil_model_api.scoring import FusedScorer
from soil_model_api.served_model import LoadedModel, ModelState, run_self_check
from soil_model_api.validation import BandSchema

log = logging.getLogger(__name__)

DOCS_ASSETS = "/docs-assets"  # where the Swagger UI / ReDoc files are served from


class Serving:
    """Per-model hot-path helpers: the band schema, the domain judge, the constant part of responses, counters."""

    def __init__(self, loaded: LoadedModel, settings: Settings, metrics: ServiceMetrics):
        info = loaded.info
        self.schema = BandSchema(loaded.bands, settings.max_batch, settings.max_body_bytes)
        self.bodies = BodyGate(self.schema.body_limit, settings.body_memory_bytes, settings.body_timeout_seconds,
                               "MODEL_API_MAX_BODY_BYTES" if settings.max_body_bytes else
                               f"MODEL_API_MAX_BATCH={settings.max_batch} spectra of {len(loaded.bands)} bands")
        self.judge = DomainJudge(loaded.domain, Scale(info.scale) if info.scale else None, info.target, info.unit)
        head = orjson.dumps({"model_name": info.name, "model_version": info.version, "target": info.target,
                             "unit": info.unit, "bands": loaded.bands})
        self.prefix = head[:-1] + b","
        # The model and its domain as one matrix product (None: they are computed one after the other).
        self.fused = FusedScorer.build(loaded, self.judge)
        self._traffic = metrics.traffic
        self._counts = metrics.traffic.model(info.name or "", info.version or "")
        self.live = live_drift_for(loaded, settings, metrics)

    def count(self, n: int, outside: int = 0) -> None:
        """Count one accepted request of ``n`` spectra, ``outside`` of them out of domain."""
        self._traffic.observe_batch(self._counts, n, outside)


def set_ready(app: FastAPI, loaded: LoadedModel, check: dict) -> None:
    """Publish a self-checked model to the routes (one assignment each, so requests see old or new)."""
    state: ModelState = app.state.model_state
    metrics: ServiceMetrics = app.state.metrics
    info = loaded.info
    if app.state.settings.blas_threads:
        # After unpickling, so the BLAS libraries the model pulled in are loaded and get the limit.
        from threadpoolctl import threadpool_limits

        threadpool_limits(app.state.settings.blas_threads)
    app.state.serving = Serving(loaded, app.state.settings, metrics)
    state.model, state.self_check, state.error, state.status = loaded, check, None, "ready"
    app.openapi_schema = None
    metrics.model_info.labels(info.name or "", info.version or "", info.alias or "", info.slot or "",
                              info.image_tag or "", info.git_revision or "").set(1)
    metrics.ready.set(1)
    log.info("serving %s version %s from %s (%d bands; self-check %s)", info.name, info.version, info.source,
             len(info.bands), check)


async def load_until_ready(app: FastAPI) -> None:
    """Load and self-check the model off the event loop; retry with backoff until it works."""
    settings: Settings = app.state.settings
    state: ModelState = app.state.model_state
    delay = 1.0
    while True:
        state.attempts += 1
        try:
            loaded = await asyncio.to_thread(load_model, settings)
            check = await asyncio.to_thread(run_self_check, loaded)
        except ConfigError as exc:  # retrying cannot fix the environment
            state.status, state.error = "failed", redact(str(exc))
            log.error("model source misconfigured: %s", state.error)
            return
        except Exception as exc:  # noqa: BLE001 - registry down, file missing, bad pickle: all retried
            state.status = "failed"
            state.error = f"{redact(str(exc))} (attempt {state.attempts}; retrying in {delay:.0f}s)"
            log.error("loading the model failed: %s", state.error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, settings.load_retry_max_seconds)
            continue
        set_ready(app, loaded, check)
        return


def create_app(settings: Settings | None = None, model: LoadedModel | None = None, lean_predict: bool = True
               ) -> FastAPI:
    """The app; with ``model`` it serves that model at once, else it loads the configured one at start.

    ``lean_predict`` False leaves ``POST /v1/predict`` to the FastAPI route (``routes/predict.py``)
    instead of ``predict_asgi.PredictMiddleware``: the same answers, for tests and profiles to compare.
    """
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        task = None
        if app.state.model_state.model is None:
            task = asyncio.create_task(load_until_ready(app))
        drift_task = None
        if settings.drift_interval_seconds > 0:
            drift_task = asyncio.create_task(check_on_schedule(
                lambda: app.state.serving.live if app.state.serving is not None else None,
                settings.drift_interval_seconds))
        yield
        for running in (task, drift_task):
            if running is not None:
                running.cancel()

    # /docs and /redoc load Swagger UI and ReDoc from the installed fastapi-offline package, not a CDN;
    # no validator badge either (it would call validator.swagger.io).
    app = FastAPIOffline(
        title="soil-model-api",
        version="0.1.0",
        summary="Predictions from one registered soil-spectroscopy model version.",
        lifespan=lifespan,
        static_url=DOCS_ASSETS,
        swagger_ui_parameters={"validatorUrl": None},
        # No OpenTelemetry: the service's metrics are Prometheus (/metrics). Left on, FastAPI asks
        # OpenTelemetry's global providers on every request whether one has been configured.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.model_state = ModelState()
    app.state.metrics = ServiceMetrics()
    app.state.serving = None
    app.include_router(predict.router)
    app.include_router(model_routes.router)
    app.include_router(health.router)
    app.include_router(drift.router)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)

    @app.exception_handler(InvalidRequest)
    async def invalid_request(_: Request, exc: InvalidRequest) -> Response:
        return Response(orjson.dumps(exc.body()), status_code=exc.status, media_type="application/json",
                        headers=exc.headers)

    def openapi() -> dict:
        # The predict body schema names the loaded model's bands; cache it only once they are known.
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
        loaded = app.state.model_state.model
        if loaded is not None:
            body = predict_request_body(loaded.bands, settings.max_batch, loaded.example[0].tolist())
            schema["paths"]["/v1/predict"]["post"]["requestBody"] = body
            app.openapi_schema = schema
        return schema

    app.openapi = openapi
    if lean_predict:  # last: the middleware stack is built here, with the handlers above
        PredictMiddleware.install(app)
    if model is not None:
        set_ready(app, model, run_self_check(model))
    return app
