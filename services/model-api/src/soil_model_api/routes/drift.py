"""GET /v1/drift: the live drift check of the served model's recent traffic, run now."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from soil_model_api.schemas import ERROR_RESPONSES, DriftResponse

router = APIRouter(tags=["drift"])


@router.get(
    "/v1/drift", response_model=DriftResponse, responses={503: ERROR_RESPONSES[503]},
    summary="Has recent traffic drifted from the model's calibration spectra?",
    description=(
        "Runs the drift gate's own family of tests (pooled-PCA scores, residual Q, offset/gain/shift "
        "directions, Hotelling T2; Holm-corrected) on the last MODEL_API_DRIFT_WINDOW spectra served "
        "against the calibration sample stored with the model. `status`: `pass`, `fail`, "
        "`insufficient_data` (fewer than `window.min_rows` spectra) or `unavailable` (the model has no "
        "calibration sample). A window unchanged since the last check returns that check's result."
    ),
)
async def drift(request: Request):
    serving = request.app.state.serving
    if serving is None:
        return JSONResponse({"detail": "model not loaded yet; see GET /readyz"}, status_code=503)
    live = serving.live
    return JSONResponse(live.to_json(await live.check()))
