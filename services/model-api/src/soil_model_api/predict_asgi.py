"""POST /v1/predict as a bare ASGI handler in front of FastAPI's routing, for the one request that is hot.

FastAPI's middleware, router, exception handling, request object and dependency solving cost
several times the work of a one-spectrum prediction. ``PredictMiddleware`` sits in front of
FastAPI's middleware stack and answers exactly ``POST /v1/predict`` itself, with the same body
limits and deadline (``body.BodyGate``), the same checks, model, interval, domain flag, counters,
request metrics and live-drift window, and the same status, headers and body for every answer,
refusals and the 500 of an unexpected error included; every other request goes on to FastAPI. The FastAPI route in ``routes/predict.py`` stays:
it describes the endpoint in the OpenAPI document, and it is the reference the tests compare this
path with, request by request (``tests/test_predict_asgi.py``).

What differs from the route is how the accepted case is found cheaply: the values are read without
the finite check, and one bound check (``DomainJudge.plausible``) clears finite and on-scale values
together; only when it fails do ``BandSchema.check_finite`` and ``DomainJudge.check_scale`` run to
name what is wrong, in the route's order.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import orjson
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from soil_model_api.body import SMALL_BODY
from soil_model_api.problems import InvalidRequest
from soil_model_api.routes.predict import NOT_LOADED, router
from soil_model_api.scoring import answer_spectra

if TYPE_CHECKING:
    from fastapi import FastAPI

    from soil_model_api.app import Serving
    from soil_model_api.metrics import ServiceMetrics
    from soil_model_api.served_model import LoadedModel

PATH = "/v1/predict"
JSON = (b"content-type", b"application/json")
SERVER_ERROR = PlainTextResponse("Internal Server Error", status_code=500)  # ServerErrorMiddleware's, debug off


def answer(model: LoadedModel, serving: Serving, body: bytes | bytearray) -> bytes:
    """The 200 body for a predict request body, counted and added to the live-drift window.

    Raises:
        InvalidRequest: what the route would refuse, with the route's status and errors.
    """
    schema, judge = serving.schema, serving.judge
    spectra, by_name = schema.read_values(body)
    if not judge.plausible(spectra):
        schema.check_finite(spectra, by_name)  # NaN and Infinity first, as the route's parse names them
        judge.check_scale(spectra)
    return answer_spectra(model, serving, spectra)


def response_headers(body: bytes, extra: dict[str, str] | None = None) -> list[tuple[bytes, bytes]]:
    """The headers Starlette's ``Response(body, headers=extra, media_type="application/json")`` sends."""
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()] if extra else []
    headers.append((b"content-length", str(len(body)).encode("latin-1")))
    headers.append(JSON)
    return headers


class PredictMiddleware:
    """Answers ``POST /v1/predict`` without FastAPI's routing; passes every other request to ``app``.

    It is the outermost layer (``install``), so it also does for its requests what the layers it
    skips do: ``MetricsMiddleware``'s count and timing, and ``ServerErrorMiddleware``'s plain 500 for
    an unexpected error, which is then raised on to the server to be logged.

    Args:
        app: the FastAPI application's own middleware stack.
        api: the FastAPI application, whose ``state`` holds the model, its ``Serving`` and the metrics.
    """

    def __init__(self, app: ASGIApp, api: FastAPI):
        self.app = app
        self.api = api
        self.metrics: ServiceMetrics = api.state.metrics
        # The route FastAPI would have matched: scope["route"] names it, as routing would.
        self.route = next(r for r in router.routes if getattr(r, "path", None) == PATH)

    @classmethod
    def install(cls, api: FastAPI) -> None:
        """Put the middleware in front of ``api``'s middleware stack, built now (add no middleware after)."""
        api.middleware_stack = cls(api.build_middleware_stack(), api)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        scope["route"] = self.route
        try:
            status, headers, body = await self.respond(scope, receive)
        except Exception:
            self.metrics.observe("POST", PATH, 500, time.perf_counter() - start)
            await SERVER_ERROR(scope, receive, send)
            raise
        response_start: Message = {"type": "http.response.start", "status": status, "headers": headers}
        await send(response_start)
        await send({"type": "http.response.body", "body": body})
        self.metrics.observe("POST", PATH, status, time.perf_counter() - start)

    async def respond(self, scope: Scope, receive: Receive) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Status, headers and body of the answer; an unexpected error propagates (a 500, as from the route)."""
        state = self.api.state
        model = state.model_state.model
        if model is None:
            return 503, response_headers(NOT_LOADED), NOT_LOADED
        serving = state.serving
        content_type = encoding = length = None
        for name, value in scope["headers"]:  # the first of each, as Starlette's Headers.get gives it
            if name == b"content-type":
                if content_type is None:
                    content_type = value.decode("latin-1")
            elif name == b"content-length":
                if length is None:
                    length = value.decode("latin-1")
            elif name == b"content-encoding" and encoding is None:
                encoding = value.decode("latin-1")
        bodies = serving.bodies
        try:
            size = bodies.declared_size(content_type, encoding, length)
            if size is not None and size <= SMALL_BODY:
                body = answer(model, serving, await bodies.read(receive))
            else:
                async with bodies.slot():
                    body = answer(model, serving, await bodies.read(receive))
        except InvalidRequest as exc:
            body = orjson.dumps(exc.body())
            return exc.status, response_headers(body, exc.headers), body
        return 200, response_headers(body), body
