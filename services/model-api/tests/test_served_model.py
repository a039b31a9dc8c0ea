"""The served model's numpy path: the same predictions and features as the scikit-learn pipeline, or none."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cross_decomposition import PLSRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from soil_model_api.model_dir import load_from_dir
from soil_model_api.served_model import CompiledPipeline, LoadedModel


@pytest.fixture(scope="module")
def loaded(model_dir) -> LoadedModel:
    return load_from_dir(model_dir)


def test_trained_model_is_served_through_numpy_equal_to_sklearn_on_the_benchmark(loaded, benchmark):
    assert loaded.compiled is not None
    predictions, features = loaded.predict_with_features(benchmark.spectra)
    np.testing.assert_allclose(predictions, benchmark.expected, rtol=1e-9, atol=1e-9)
    sk_features, sk_predictions = loaded._predict_sklearn(benchmark.spectra)
    np.testing.assert_allclose(features, sk_features, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(predictions, np.ravel(sk_predictions), rtol=1e-9, atol=1e-9)
    for i in (0, len(benchmark.spectra) - 1):  # one spectrum per request, the common case
        np.testing.assert_allclose(loaded.predict(benchmark.spectra[i:i + 1]), benchmark.expected[i:i + 1],
                                   rtol=1e-9, atol=1e-9)


def test_numpy_path_refuses_what_sklearn_refuses(loaded, benchmark):
    """A spectrum whose preprocessing gives NaN (log10 of a negative value) is an error on both paths."""
    bad = benchmark.spectra[:2].copy()
    bad[1, 5] = -1.0
    with np.errstate(all="ignore"), pytest.raises(ValueError):
        loaded.compiled.predict_with_features(bad)
    with np.errstate(all="ignore"), pytest.raises(ValueError):
        loaded._predict_sklearn(bad)
    with pytest.raises(ValueError):
        loaded.compiled.predict_with_features(benchmark.spectra[:1, :-1])


def _fitted(steps, spectra, rng) -> Pipeline:
    target = spectra[:, :3].sum(1) + rng.normal(0, 0.01, len(spectra))
    return Pipeline([*steps, ("model", PLSRegression(n_components=3))]).fit(spectra, target)


def test_dense_weights_and_other_functions_compile_and_agree(benchmark):
    rng = np.random.default_rng(7)
    spectra = benchmark.spectra[:40]
    dense = rng.normal(size=(spectra.shape[1], 20))
    pipeline = _fitted([("log10", FunctionTransformer(np.log10)), ("mix", FunctionTransformer(np.dot, kw_args={"b": dense})),
                        ("clip", FunctionTransformer(np.clip, kw_args={"a_min": -50, "a_max": 50}))], spectra, rng)
    model = LoadedModel(pipeline, None, spectra[:1])
    assert model.compiled is not None
    np.testing.assert_allclose(model.predict(spectra), pipeline.predict(spectra).ravel(), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("step", [StandardScaler(), FunctionTransformer(np.log10, validate=True)])
def test_a_step_it_cannot_reproduce_leaves_scikit_learn_serving(benchmark, step):
    rng = np.random.default_rng(3)
    spectra = benchmark.spectra[:40]
    pipeline = _fitted([("step", step)], spectra, rng)
    assert CompiledPipeline.compile(pipeline) is None
    model = LoadedModel(pipeline, None, spectra[:1])
    assert model.compiled is None
    np.testing.assert_allclose(model.predict(spectra), pipeline.predict(spectra).ravel(), rtol=1e-12)
