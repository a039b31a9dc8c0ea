"""An accepted predict request's answer: prediction, interval, Hotelling T2, Q and domain flag per spectrum.

Both ways into ``POST /v1/predict`` (``predict_asgi.PredictMiddleware`` and the FastAPI route) end
in ``answer_spectra``, so they answer byte for byte alike.

For a PLS model with a calibration domain, the prediction and the domain's projection are computed
together (``FusedScorer``): PLS predicts ``(x - x_mean) @ coef.T + intercept`` and the domain
projects ``(x - mean) @ P`` (P: the calibration PCA's loadings), two affine maps of the same
preprocessed spectrum x. Centred once on the domain's mean they are one product with the
``(n_features, 1 + k)`` matrix ``[coef.T | P]``, the prediction's offset absorbing
``(mean - x_mean) @ coef.T``; Q, the squared distance from the k-component subspace, is then
``|x - mean|^2 - |scores|^2`` (Jackson, *A User's Guide to Principal Components*, 1991, ch. 2.7;
Nomikos & MacGregor, Technometrics 37, 1995) and T2 ``sum(scores^2 / variances)``. For one
spectrum this is four numpy calls and a few Python float operations instead of about fifteen
numpy calls on 1 x n_features arrays, each of which costs more than its arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from soil_model_api.problems import InvalidRequest, problem
from soil_model_api.served_model import COMPILED_TOLERANCE, preprocessed

if TYPE_CHECKING:
    from collections.abc import Callable

    from soil_model_api.app import Serving
    from soil_model_api.domain import DomainJudge
    from soil_model_api.served_model import LoadedModel


@dataclass(frozen=True)
class FusedScorer:
    """A one-target PLS pipeline and its calibration domain's T2/Q as one matrix product.

    Built from the model's ``CompiledPipeline`` (its nonlinear steps run as they are) and the
    ``DomainJudge``'s mean, loadings and score variances; ``build`` checks it against the two
    separately on probe spectra and gives None when they disagree.
    """

    transforms: tuple[Callable[[np.ndarray], np.ndarray], ...]
    centre: np.ndarray  # (n_features,) the domain's mean of the preprocessed calibration spectra
    weights: np.ndarray  # (n_features, 1 + k): PLS coefficients, then the k PCA loadings
    offset: float  # intercept + (centre - x_mean) @ coef
    inv_var: np.ndarray  # (k,) 1 / score variance
    inv_var_list: tuple[float, ...]

    @classmethod
    def build(cls, model: LoadedModel, judge: DomainJudge) -> FusedScorer | None:
        """The fused form of ``model`` and ``judge``, or None (no numpy pipeline, no domain, several
        targets, or it differs from the separate computation by more than ``COMPILED_TOLERANCE``)."""
        compiled = model.compiled
        if compiled is None or judge.domain is None or compiled.coef.shape[0] != 1:
            return None
        centre = np.asarray(judge.mean, dtype=np.float64)
        if centre.shape != compiled.x_mean.shape:
            return None
        coef = compiled.coef[0]
        weights = np.ascontiguousarray(np.column_stack([coef, judge.loadings]))
        offset = float(compiled.intercept[0] + (centre - compiled.x_mean) @ coef)
        inv_var = np.asarray(judge.inv_var, dtype=np.float64)
        fused = cls(compiled.transforms, centre, weights, offset, inv_var, tuple(inv_var.tolist()))
        return fused if fused._agrees(model, judge) else None

    def _agrees(self, model: LoadedModel, judge: DomainJudge) -> bool:
        """Whether it gives the separate path's predictions, T2 and Q for the example (and it x0.9, x1.1),
        alone and as a batch."""
        probe = np.vstack([model.example, 0.9 * model.example, 1.1 * model.example]).astype(np.float64)
        try:
            predictions, features = model.predict_with_features(probe)
            t2, q = judge.score(features)
            batch = self.score(probe)
            alone = [self.score(probe[i:i + 1]) for i in range(len(probe))]
        except Exception:  # noqa: BLE001 - whatever fails here, the separate path serves
            return False
        expected = np.column_stack([predictions, t2, q])
        scale = max(1.0, float(np.abs(expected).max()))
        return all(np.allclose(np.column_stack(got), expected[rows], rtol=COMPILED_TOLERANCE,
                               atol=COMPILED_TOLERANCE * scale)
                   for got, rows in [(batch, slice(None)), *((a, slice(i, i + 1)) for i, a in enumerate(alone))])

    def score(self, spectra: np.ndarray) -> tuple[list[float], list[float], list[float]]:
        """Predictions, Hotelling T2 and Q (Python floats) of a (n, n_bands) float64 array.

        Raises:
            ValueError: the preprocessed spectra have the wrong width or a value that is not finite
                (as ``CompiledPipeline.predict_with_features``).
        """
        features = preprocessed(self.transforms, spectra, self.centre.shape[0])
        if features.shape[0] == 1:
            centred = features[0] - self.centre
            norm = float(centred @ centred)  # finite only if every value is (or ValueError below)
            if not math.isfinite(norm):
                self._refuse_not_finite(features)
            value, *scores = (centred @ self.weights).tolist()
            t2 = explained = 0.0
            for score, inv_var in zip(scores, self.inv_var_list, strict=True):
                squared = score * score
                t2 += squared * inv_var
                explained += squared
            return [value + self.offset], [t2], [max(norm - explained, 0.0)]
        centred = features - self.centre
        norms = np.vecdot(centred, centred)
        if not math.isfinite(norms.sum()):
            self._refuse_not_finite(features)
        projected = centred @ self.weights
        squared = projected[:, 1:] * projected[:, 1:]
        q = norms - squared.sum(axis=1)
        return ((projected[:, 0] + self.offset).tolist(), (squared @ self.inv_var).tolist(),
                np.maximum(q, 0.0, out=q).tolist())

    @staticmethod
    def _refuse_not_finite(features: np.ndarray) -> None:
        if not np.isfinite(features).all():
            raise ValueError("Input X contains NaN or infinity after preprocessing")


def answer_spectra(model: LoadedModel, serving: Serving, spectra: np.ndarray) -> bytes:
    """The 200 body for checked spectra (n, n_bands), counted and added to the live-drift window.

    Raises:
        InvalidRequest: 422 naming the spectra the model gives no finite prediction for.
    """
    judge, fused = serving.judge, serving.fused
    t2 = q = None
    try:
        if fused is not None:
            values, t2, q = fused.score(spectra)
        else:
            predictions, features = model.predict_with_features(spectra)
            values = predictions.tolist()
    except Exception:  # noqa: BLE001 - the model rejected valid-looking input; find which spectra
        values = None
    if values is None or not all(map(math.isfinite, values)):
        raise InvalidRequest(422, unpredictable_rows(model, spectra))
    if fused is None:
        scored = judge.score(features)
        if scored is not None:
            t2, q = scored[0].tolist(), scored[1].tolist()
    raw = None if t2 is None else judge.raw_findings(spectra)
    results, outside = judge.contexts(values, t2, q, raw)
    serving.count(len(values), outside)
    serving.live.observe(spectra, None if t2 is None else (t2, q), getattr(judge, "t2_limit", None),
                         getattr(judge, "q_limit", None), raw)
    # Constant fields are serialised once per model (``prefix``: the object up to ``"predictions"``);
    # only the predictions and their context change, serialised by one orjson call, its "{" cut.
    return serving.prefix + orjson.dumps({"predictions": values, "results": results})[1:]


def unpredictable_rows(model: Any, spectra: np.ndarray) -> list[dict]:
    """Name the spectra the model cannot score (e.g. extreme values overflow its preprocessing)."""
    bad = []
    for i in range(spectra.shape[0]):
        try:
            ok = bool(np.isfinite(model.predict(spectra[i:i + 1])).all())
        except Exception:  # noqa: BLE001
            ok = False
        if not ok:
            bad.append(i)
    if not bad:  # only the batch as a whole failed
        return [problem(["spectra"], "the model cannot score this batch", "unpredictable")]
    return [problem(["spectra", i], "the model gives no finite prediction for this spectrum; "
                                    "check its values are on the training data's scale", "unpredictable")
            for i in bad[:10]]
