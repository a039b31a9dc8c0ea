"""POST /v1/predict: validate the raw body against the model's bands, predict, answer with orjson.

The service answers this endpoint in ``predict_asgi.PredictMiddleware``, before FastAPI's routing;
this route describes it in the OpenAPI document and is the reference that path is tested against
(and what serves it with ``create_app(lean_predict=False)``).
"""

from __future__ import annotations

import numpy as np
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from soil_model_api.schemas import ERROR_RESPONSES, PredictResponse, predict_request_body
from soil_model_api.scoring import answer_spectra

router = APIRouter(tags=["predict"])
NOT_LOADED = orjson.dumps({"detail": "model not loaded yet; see GET /readyz"})


async def read_spectra(serving, request: Request) -> np.ndarray:
    """The body's spectra in band order; the raw body is held (and counted) only while it is parsed."""
    async with serving.bodies.admit(request) as body:
        return serving.schema.parse(body)


@router.post(
    "/v1/predict",
    summary="Predict the target for one or many spectra",
    description=(
        "Each spectrum is either an array of values in the model's band order or an object mapping "
        "every band name to its value (see `GET /v1/model` for the bands). Values must be finite "
        "numbers; wrong band names or counts, NaN, Infinity, strings, duplicate keys, empty batches (422), "
        "batches above MODEL_API_MAX_BATCH or bodies above `max_body_bytes` of `GET /v1/model` (413) and "
        "bodies that are not `application/json` (415) are rejected, each error naming its field. A spectrum on another "
        "scale than the model's (fraction vs percent reflectance vs absorbance) is refused (422, "
        "`wrong_scale`, naming the likely scale). Each accepted spectrum gets a `results` entry: the "
        "value with the target and unit, a conformal prediction interval, Hotelling T2 and Q residual, "
        "and `in_domain` with the reason when a limit is exceeded."
    ),
    response_model=PredictResponse,
    responses=ERROR_RESPONSES,
    openapi_extra={"requestBody": predict_request_body(None, 1000, None)},
)
async def predict(request: Request) -> Response:
    # The body is read raw: a nested pydantic model would cost more than the prediction itself.
    app = request.app
    model = app.state.model_state.model
    if model is None:
        return Response(NOT_LOADED, status_code=503, media_type="application/json")
    serving = app.state.serving
    spectra = await read_spectra(serving, request)
    serving.judge.check_scale(spectra)  # 422 naming the likely scale
    return Response(answer_spectra(model, serving, spectra), media_type="application/json")
