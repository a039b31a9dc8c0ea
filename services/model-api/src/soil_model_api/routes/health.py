"""Probes and metrics: /healthz (process alive), /readyz (model loaded and self-checked), /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from soil_model_api.schemas import HealthResponse, ReadyResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthResponse, summary="The process is alive")
async def healthz():
    return HealthResponse(status="alive")


@router.get("/readyz", response_model=ReadyResponse, responses={503: {"model": ReadyResponse}},
            summary="A model is loaded and its self-check prediction succeeded")
async def readyz(request: Request):
    state = request.app.state.model_state
    body = ReadyResponse(
        status=state.status,
        model_version=state.model.info.version if state.model else None,
        attempts=state.attempts,
        detail=state.error,
        self_check=state.self_check,
    )
    if state.status != "ready":
        return JSONResponse(body.model_dump(), status_code=503)
    return body


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
async def metrics(request: Request):
    payload, content_type = request.app.state.metrics.exposition()
    return Response(payload, media_type=content_type)
