"""scoring.FusedScorer: prediction, Hotelling T2 and Q from one matrix product equal the model's and the trainer's."""

from __future__ import annotations

import numpy as np
import pytest

from soil_model_api.domain import DomainJudge
from soil_model_api.model_dir import load_from_dir
from soil_model_api.scoring import FusedScorer


@pytest.fixture(scope="module")
def loaded(model_dir):
    return load_from_dir(model_dir)


@pytest.fixture(scope="module")
def judge(loaded):
    return DomainJudge(loaded.domain, None, "SOC_target", "%")


def test_fused_scoring_equals_scikit_learn_and_the_trainers_domain_alone_and_in_a_batch(loaded, judge, benchmark):
    from soil_trainer.domain import preprocess, score_domain

    spectra = benchmark.spectra
    expected = np.asarray(loaded.estimator.predict(spectra), dtype=np.float64).ravel()
    expected_t2, expected_q = score_domain(loaded.domain, preprocess(loaded.estimator, spectra))
    fused = FusedScorer.build(loaded, judge)
    assert fused is not None

    batch = fused.score(spectra)
    alone = [list(column) for column in zip(*(fused.score(row[None, :]) for row in spectra), strict=True)]
    alone = [[value for (value,) in column] for column in alone]

    for predictions, t2, q in (batch, alone):
        np.testing.assert_allclose(predictions, expected, rtol=1e-9)
        np.testing.assert_allclose(t2, expected_t2, rtol=1e-9)
        np.testing.assert_allclose(q, expected_q, rtol=1e-7, atol=1e-12)
        assert min(q) >= 0.0


def test_fused_scoring_refuses_what_the_model_refuses(loaded, judge, benchmark):
    fused = FusedScorer.build(loaded, judge)
    for bad in (benchmark.spectra[:1].copy(), benchmark.spectra[:3].copy()):
        bad[-1, 5] = np.nan
        with pytest.raises(ValueError, match="NaN or infinity"):
            fused.score(bad)
    with pytest.raises(ValueError, match="features"):
        fused.score(benchmark.spectra[:1, :-1])


def test_a_fused_form_that_disagrees_with_the_separate_one_is_not_used(loaded, benchmark, monkeypatch):
    judge = DomainJudge(loaded.domain, None, "SOC_target", "%")
    separate = judge.score
    monkeypatch.setattr(judge, "score", lambda features: tuple(s * (1 + 1e-6) for s in separate(features)))

    assert FusedScorer.build(loaded, judge) is None
