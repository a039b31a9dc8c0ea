"""GET /v1/model: which model this slot serves, where it came from, and what input it expects."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from soil_model_api.schemas import ERROR_RESPONSES, ModelInfoResponse

router = APIRouter(tags=["model"])


@router.get("/v1/model", response_model=ModelInfoResponse, responses={503: ERROR_RESPONSES[503]},
            summary="The served model: name, version, alias, lineage, metrics, bands, slot and image tag")
async def model_info(request: Request):
    model = request.app.state.model_state.model
    if model is None:
        return JSONResponse({"detail": "model not loaded yet; see GET /readyz"}, status_code=503)
    info = asdict(model.info)
    serving = request.app.state.serving
    return ModelInfoResponse(**info, n_bands=len(model.bands), max_batch=request.app.state.settings.max_batch,
                             max_body_bytes=serving.schema.body_limit,
                             domain=serving.judge.summary() if serving is not None else None)
