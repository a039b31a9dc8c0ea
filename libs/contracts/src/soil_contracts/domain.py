"""``domain.json``: a model's calibration domain and conformal intervals, written by train, read by the model API.

Everything is in the model's own preprocessed space (the fitted pipeline's steps before the
regressor), so serving scores a spectrum with the features it predicts from. Arrays are plain
lists, so this package needs pydantic only.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from soil_contracts._record import Record
from soil_contracts.library import Scale

DOMAIN_FILE = "domain.json"
DOMAIN_SCHEMA_VERSION = 2  # 2: value_range.min_span; components >= the regressor's latent variables. 1 still reads.


class DomainLimit(BaseModel):
    """Hotelling T2 and Q-residual limits at one confidence level (e.g. 0.99)."""

    model_config = ConfigDict(extra="forbid")

    confidence: float = Field(gt=0, lt=1)
    t2: float = Field(gt=0)
    q: float = Field(ge=0)


class IntervalWidth(BaseModel):
    """A symmetric conformal interval: ``prediction +- half_width`` covers ``coverage`` of new samples."""

    model_config = ConfigDict(extra="forbid")

    coverage: float = Field(gt=0, lt=1)
    half_width: float = Field(ge=0)


class ValueRange(BaseModel):
    """Plausible values of one spectrum on the model's input scale (the library's ``check_scale`` rule).

    A spectrum whose largest value lies outside ``[max_low, max_high]`` or whose smallest is below
    ``min_low`` is on another scale. ``observed_min``/``observed_max``: over the calibration spectra.

    ``min_span``: the smallest span (largest minus smallest value over the bands, in the scale's
    units) a spectrum may have: half the smallest span of the calibration spectra. A flatter
    spectrum (a constant 50% reflectance, a dark reference, a saturated detector) carries none of
    the absorption features the model reads, whatever its preprocessing makes of it; it is out of
    domain before any statistic. A plausibility rule, not a statistic: it adds no false alarms on
    the calibration population. None in files written before it was recorded (not checked).
    """

    model_config = ConfigDict(extra="forbid")

    max_low: float
    max_high: float
    min_low: float
    observed_min: float
    observed_max: float
    min_span: float | None = Field(default=None, ge=0)


class ArtefactCheck(BaseModel):
    """A matched-filter test for one instrument artefact: a constant added to every band of the spectrum
    in ``space`` (``input``: the model's input scale, a reflectance offset; ``absorbance``: log10 of
    ``reference`` / x, where a constant is a gain change of the reflectance).

    ``z = weights @ s + offset`` (s the spectrum in ``space``) is the generalised-likelihood-ratio
    statistic for "calibration spectrum plus a constant" against the calibration spectra's covariance
    (probabilistic PCA: the leading components plus an isotropic rest); the spectrum is out of domain
    when ``z`` lies outside ``[lower, upper]``, conformal limits of out-of-fold z of the calibration
    spectra (Kay 1998, *Fundamentals of Statistical Signal Processing II: Detection Theory*, ch. 7
    (matched subspace detector); Tipping & Bishop 1999, J. R. Stat. Soc. B 61, 611-622 (PPCA);
    Martens & Stark 1991, J. Pharm. Biomed. Anal. 9, 625-635, for additive and multiplicative
    effects as the instrument and scatter artefacts of NIR spectra).
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    space: str = Field(pattern="^(input|absorbance)$")
    reference: float = Field(default=1.0, gt=0)
    weights: list[float] = Field(min_length=1)
    offset: float
    lower: float
    upper: float


class ApplicabilityDomain(Record):
    """``<model dir>/domain.json``: what serving needs to judge a new spectrum and bound its prediction.

    Attributes:
        features: names of the preprocessing steps the space is made of (``log10``, ``resample`` ...).
        n_samples: calibration spectra; n_features: length of a preprocessed spectrum.
        mean: (n_features,) calibration mean; components: (k, n_features) orthonormal PCA loadings.
        score_variances: (k,) variance (ddof=1) of the calibration scores per component.
        explained_variance: fraction of the calibration variance the k components hold.
        limits: T2 and Q limits per confidence level; ``flag_confidence`` is the one ``in_domain`` uses.
        target, target_unit, target_min, target_max: the calibration range of the predicted property.
        scale, value_range: the input scale and its plausible values.
        intervals: conformal half-widths per coverage; ``default_coverage`` is the one served.
        interval_method: how the widths were calibrated (library, method, folds).
        artefacts: matched-filter checks for instrument artefacts on the raw spectrum (schema 2;
            empty in older files).
        limit_method: how the T2/Q limits were set; files written before it was recorded used the
            parametric limits (F distribution for T2, Jackson-Mudholkar for Q).
    """

    kind: str = "applicability domain"
    FILE: ClassVar[str] = DOMAIN_FILE

    schema_version: int = Field(default=DOMAIN_SCHEMA_VERSION, ge=1)
    features: list[str] = Field(default_factory=list)
    n_samples: int = Field(ge=2)
    n_features: int = Field(ge=1)
    mean: list[float]
    components: list[list[float]] = Field(min_length=1)
    score_variances: list[float] = Field(min_length=1)
    explained_variance: float = Field(gt=0, le=1.000001)
    limits: list[DomainLimit] = Field(min_length=1)
    flag_confidence: float = 0.99
    target: str = Field(min_length=1)
    target_unit: str = Field(min_length=1)
    target_min: float
    target_max: float
    scale: Scale
    value_range: ValueRange
    intervals: list[IntervalWidth] = Field(min_length=1)
    default_coverage: float = 0.9
    interval_method: str = ""
    limit_method: str = "parametric: F for Hotelling T2 (Tracy, Young & Mason 1992), Jackson-Mudholkar for Q"
    artefacts: list[ArtefactCheck] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> ApplicabilityDomain:
        if self.schema_version > DOMAIN_SCHEMA_VERSION:
            raise ValueError(f"schema_version {self.schema_version} is newer than this reader's "
                             f"{DOMAIN_SCHEMA_VERSION}; upgrade soil-contracts (the model API) to serve this model")
        k = len(self.components)
        if len(self.mean) != self.n_features or any(len(row) != self.n_features for row in self.components):
            raise ValueError(f"mean and every component need {self.n_features} values (n_features)")
        if len(self.score_variances) != k or min(self.score_variances) <= 0:
            raise ValueError(f"score_variances needs {k} positive values, one per component")
        if self.limit(self.flag_confidence) is None:
            raise ValueError(f"flag_confidence {self.flag_confidence} has no entry in limits")
        if self.interval(self.default_coverage) is None:
            raise ValueError(f"default_coverage {self.default_coverage} has no entry in intervals")
        n_bands = {len(check.weights) for check in self.artefacts}
        if len(n_bands) > 1:
            raise ValueError("every artefact check needs one weight per input band")
        return self

    def limit(self, confidence: float) -> DomainLimit | None:
        return next((lim for lim in self.limits if abs(lim.confidence - confidence) < 1e-9), None)

    def interval(self, coverage: float) -> IntervalWidth | None:
        return next((iv for iv in self.intervals if abs(iv.coverage - coverage) < 1e-9), None)


CALIBRATION_FILE = "calibration_sample.json"
CALIBRATION_SCHEMA_VERSION = 1


class CalibrationSample(Record):
    """``<model dir>/calibration_sample.json``: raw calibration spectra the model API's live drift check
    compares its window of recent requests with, by the drift gate's own method (``soil_drift``).

    The gate fits its pooled PCA on both samples, so it needs spectra, not summary statistics.
    Values are on the model's input scale and bands (``scale``, ``bands``), rounded to
    ``significant_digits`` (far below instrument noise).

    Attributes:
        bands: the model's input band names, in order; every row has one value per band.
        rows: (n_rows, n_bands) spectra; a seeded random subset of the training spectra when there
            were more than ``max_rows``.
        n_source_rows: training spectra the sample was drawn from; seed: the draw's seed.
    """

    kind: str = "calibration sample"
    FILE: ClassVar[str] = CALIBRATION_FILE

    schema_version: int = CALIBRATION_SCHEMA_VERSION
    scale: Scale
    bands: list[str] = Field(min_length=1)
    rows: list[list[float]] = Field(min_length=2)
    n_source_rows: int = Field(ge=2)
    max_rows: int = Field(ge=2)
    seed: int
    significant_digits: int = Field(ge=3, le=17)

    @model_validator(mode="after")
    def _consistent(self) -> CalibrationSample:
        n = len(self.bands)
        bad = next((i for i, row in enumerate(self.rows) if len(row) != n), None)
        if bad is not None:
            raise ValueError(f"rows[{bad}] has {len(self.rows[bad])} values; every row needs {n} (one per band)")
        if len(self.rows) > min(self.max_rows, self.n_source_rows):
            raise ValueError(f"{len(self.rows)} rows, more than max_rows {self.max_rows} or n_source_rows "
                             f"{self.n_source_rows}")
        return self

    def to_json(self) -> str:
        """Compact JSON (no indentation: the spectra are most of the file), one final newline."""
        import json

        return json.dumps(self.model_dump(mode="json", exclude={"kind"}), separators=(",", ":"),
                          sort_keys=True) + "\n"
