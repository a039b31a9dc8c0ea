"""Response models and the model-specific OpenAPI schema of the predict request."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorItem(BaseModel):
    loc: list[str | int] = Field(description="Where the problem is, e.g. ['body', 'spectra', 0, 'wl_400']")
    msg: str = Field(description="What is wrong and what is expected")
    type: str


class ErrorResponse(BaseModel):
    """FastAPI's error shape: one item per problem, each naming its field."""

    detail: list[ErrorItem] | str


class PredictionInterval(BaseModel):
    lower: float
    upper: float
    coverage: float = Field(description="Nominal share of new samples whose true value lies inside, e.g. 0.9")


class SpectrumResult(BaseModel):
    """One spectrum's prediction with its context."""

    value: float = Field(description="The prediction (the same number as in `predictions`)")
    target: str | None = Field(description="What is predicted, e.g. SOC_target")
    unit: str | None = Field(description="The unit of value and interval, e.g. %")
    interval: PredictionInterval | None = Field(
        description="Cross-conformal prediction interval (null: the spectrum is out of domain, so no "
                    "interval's coverage holds for it, or the model has no domain.json)")
    t2: float | None = Field(description="Hotelling T2 of the preprocessed spectrum in the calibration PCA")
    q: float | None = Field(description="Q residual (squared distance from the calibration PCA subspace)")
    in_domain: bool | None = Field(description="False when T2 or Q is above its limit or the raw spectrum fails "
                                   "a check (flat, offset or gain artefact); see GET /v1/model")
    in_calibration_range: bool | None = Field(description="The value lies within the calibration target range")
    reason: str | None = Field(description="Which limit is exceeded and by how much; null when in the domain")


class PredictResponse(BaseModel):
    predictions: list[float] = Field(description="One prediction per spectrum, in request order")
    model_name: str | None = Field(description="Registered model name")
    model_version: str | None = Field(description="Registered model version (null for an unregistered model)")
    target: str | None = Field(description="What is predicted, e.g. SOC_target")
    unit: str | None = Field(description="The unit of the predictions, e.g. % (null: a model without lineage)")
    bands: list[str] = Field(description="The band order the values were read in")
    results: list[SpectrumResult] = Field(description="Per spectrum, in request order: value and context")

    model_config = {
        "protected_namespaces": (),
        "json_schema_extra": {
            "examples": [{
                "predictions": [1.42],
                "model_name": "soil-soc",
                "model_version": "7",
                "target": "SOC_target",
                "unit": "%",
                "bands": ["wl_350", "wl_355", "..."],
                "results": [{"value": 1.42, "target": "SOC_target", "unit": "%",
                             "interval": {"lower": 0.55, "upper": 2.29, "coverage": 0.9},
                             "t2": 2.1, "q": 0.012, "in_domain": True, "in_calibration_range": True,
                             "reason": None}],
            }]
        },
    }


class ModelInfoResponse(BaseModel):
    name: str | None
    version: str | None
    alias: str | None = Field(description=(
        "The alias the model was resolved by (MODEL_URI models:/<name>@<alias>, e.g. staging); null when the "
        "version was pinned (models:/<name>/<version>, MODEL_API_REGISTERED_FILE, MODEL_DIR), as deployed "
        "slots are: see aliases"))
    aliases: list[str] = Field(description=(
        "Every alias on the served version when it was loaded, whichever way it was resolved (e.g. "
        "[production, staging] for a slot pinned to the version both point at)"))
    git_revision: str | None
    data_version: str | None
    target: str | None = Field(description="What is predicted, e.g. SOC_target")
    unit: str | None = Field(description="The target's unit, e.g. % or pH")
    scale: str | None = Field(description="The input spectra's scale, e.g. reflectance_percent")
    domain: dict[str, Any] | None = Field(
        description="Calibration domain: components, T2/Q limits, target range, interval coverage and half-width")
    metrics: dict[str, float] = Field(description="Benchmark metrics (rmse, r2, rpd, ...)")
    bands: list[str] = Field(description="Expected band names, in the order array inputs use")
    n_bands: int
    slot: str | None = Field(description="blue or green, from MODEL_API_SLOT")
    image_tag: str | None = Field(description="From MODEL_API_IMAGE_TAG")
    source: str = Field(description="The MODEL_URI or MODEL_DIR the model was loaded from")
    max_batch: int = Field(description="Most spectra per predict request (MODEL_API_MAX_BATCH)")
    max_body_bytes: int = Field(description="Longest predict body in bytes (MODEL_API_MAX_BODY_BYTES, or "
                                "derived from max_batch and the bands)")


class HealthResponse(BaseModel):
    status: str = Field(examples=["alive"])


class ReadyResponse(BaseModel):
    status: str = Field(description="ready, loading or failed", examples=["ready"])
    model_version: str | None = None
    attempts: int = 0
    detail: str | None = None
    self_check: dict[str, Any] = Field(default_factory=dict)

    model_config = {"protected_namespaces": ()}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "The client closed the connection before the body ended"},
    408: {"model": ErrorResponse, "description": "The body did not arrive within MODEL_API_BODY_TIMEOUT_SECONDS"},
    413: {"model": ErrorResponse, "description": "More spectra than MODEL_API_MAX_BATCH, or a body above "
          "max_body_bytes (GET /v1/model)"},
    415: {"model": ErrorResponse, "description": "The body is not application/json (UTF-8, not compressed)"},
    422: {"model": ErrorResponse, "description": "Invalid body: each item names the field and the reason"},
    503: {"model": ErrorResponse, "description": "No model loaded yet, or no room to read a large body in time"},
}


def predict_request_body(bands: list[str] | None, max_batch: int, example: list[float] | None) -> dict[str, Any]:
    """The requestBody object for ``POST /v1/predict``; exact (names, counts) once the bands are known."""
    number = {"type": "number", "description": "A finite value (NaN and Infinity are rejected)"}
    if bands:
        as_array = {
            "type": "array", "items": number, "minItems": len(bands), "maxItems": len(bands),
            "title": "SpectrumValues",
            "description": f"{len(bands)} values in the model's band order ({bands[0]} ... {bands[-1]}; "
                           "see GET /v1/model)",
        }
        as_object = {
            "type": "object", "title": "SpectrumByBand",
            "properties": {b: number for b in bands}, "required": list(bands), "additionalProperties": False,
            "description": "Band name -> value; every band of the model, no others",
        }
    else:
        as_array = {"type": "array", "items": number, "minItems": 1, "title": "SpectrumValues"}
        as_object = {"type": "object", "additionalProperties": number, "minProperties": 1, "title": "SpectrumByBand"}
    schema = {
        "type": "object",
        "title": "PredictRequest",
        "required": ["spectra"],
        "additionalProperties": False,
        "properties": {
            "spectra": {
                "type": "array", "minItems": 1, "maxItems": max_batch,
                "items": {"oneOf": [as_array, as_object]},
                "description": f"1 to {max_batch} spectra; each an array in band order or an object by band name",
            }
        },
    }
    examples: dict[str, Any] = {}
    if bands and example is not None:
        examples = {
            "array": {"summary": "One spectrum as values in band order", "value": {"spectra": [example]}},
            "by_band": {"summary": "One spectrum by band name",
                        "value": {"spectra": [dict(zip(bands, example, strict=True))]}},
        }
    content: dict[str, Any] = {"schema": schema}
    if examples:
        content["examples"] = examples
    return {"required": True, "content": {"application/json": content}}


class DriftWindow(BaseModel):
    rows: int = Field(description="Spectra in the window the check tested")
    capacity: int = Field(description="MODEL_API_DRIFT_WINDOW: the most spectra the window holds")
    min_rows: int = Field(description="Fewer spectra than this: insufficient_data (MODEL_API_DRIFT_MIN_ROWS)")
    spectra_seen: int = Field(description="Spectra served since the start, up to this check")
    out_of_domain_ratio: float | None = Field(description="Share of the window's spectra scored out of domain")


class DriftRegion(BaseModel):
    start: float
    end: float
    unit: str = Field(description="nm or cm-1")


class DriftFinding(BaseModel):
    name: str = Field(description="PC3, spectral residual (Q), baseline offset, gain, wavelength shift, "
                                  "all components (Hotelling T2), or a band region such as wl_400..wl_580")
    kind: str = Field(description="component (a test of the family) or region (where the spectra moved)")
    test: str
    p_value: float | None = Field(description="Holm-adjusted over the family (a region: Benjamini-Hochberg)")
    statistic: float | None
    drifted: bool
    effect: dict[str, float | int | None] = Field(description="Effect sizes: KS, Wasserstein, PSI, AUC, means ...")
    region: DriftRegion | None = Field(description="The wavelength region, for a region finding")


class DriftReference(BaseModel):
    source: str
    rows: int = Field(description="Calibration spectra compared with the window")


class DriftResponse(BaseModel):
    """The live drift check: the drift gate's verdict on recent traffic against the calibration sample."""

    status: str = Field(description="pass | fail | insufficient_data | unavailable")
    drift_detected: bool | None
    summary: str
    checked_at: str = Field(description="When the check ran (UTC, ISO 8601)")
    check_seconds: float
    window: DriftWindow
    reference: DriftReference
    method: str
    alpha: float = Field(description="Family-wise false-positive rate (MODEL_API_DRIFT_ALPHA)")
    p_value: float | None = Field(description="Smallest Holm-adjusted p-value of the family")
    findings: list[DriftFinding] = Field(description="Drifted tests and regions, most significant first; "
                                                     "without drift, the three smallest p-values")
