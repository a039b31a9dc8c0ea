"""domain: every prediction carries its context; wrong-scale spectra are refused, shifted ones flagged."""

from __future__ import annotations

import re

import httpx
import numpy as np
import pytest

from soil_model_api.domain import NO_DOMAIN, DomainJudge
from soil_model_api.model_dir import load_from_dir


@pytest.fixture(scope="module")
def loaded(model_dir):
    return load_from_dir(model_dir)


def predict(url: str, spectra: np.ndarray) -> httpx.Response:
    return httpx.post(f"{url}/v1/predict", json={"spectra": spectra.tolist()}, timeout=60)


def test_each_prediction_carries_value_unit_interval_and_domain(service, benchmark):
    body = predict(service.url, benchmark.spectra[:20]).json()

    results = body["results"]
    assert len(results) == 20
    np.testing.assert_allclose([r["value"] for r in results], body["predictions"], rtol=0, atol=0)
    for r in results:
        assert (r["target"], r["unit"]) == ("SOC_target", "%")
        if r["in_domain"]:
            assert r["interval"]["lower"] < r["value"] < r["interval"]["upper"]
            assert r["interval"]["coverage"] == 0.9
        else:  # no interval vouches for a spectrum outside the calibration population
            assert r["interval"] is None
        assert r["t2"] >= 0 and r["q"] >= 0
        assert (r["reason"] is None) == r["in_domain"]
    assert sum(r["in_domain"] for r in results) >= 17


def test_benchmark_intervals_cover_about_their_nominal_share(service, benchmark, prepared_data):
    import pandas as pd

    truth = pd.read_parquet(prepared_data / "benchmark.parquet")["SOC_target"].to_numpy()
    results = predict(service.url, benchmark.spectra).json()["results"]
    covered = np.mean([r["interval"]["lower"] <= y <= r["interval"]["upper"]
                       for r, y in zip(results, truth, strict=True) if r["in_domain"]])
    flagged = np.mean([not r["in_domain"] for r in results])

    assert 0.85 <= covered <= 0.95, covered
    assert flagged <= 0.10, flagged


@pytest.mark.parametrize(("convert", "named"), [
    (lambda x: x / 100.0, "reflectance fraction"),
    (lambda x: np.log10(100.0 / x), "absorbance"),
])
def test_spectra_on_another_scale_are_refused_naming_the_likely_scale(service, benchmark, convert, named):
    resp = predict(service.url, convert(benchmark.spectra[:3]))

    assert resp.status_code == 422
    detail = resp.json()["detail"]
    assert [d["loc"] for d in detail] == [["body", "spectra", i] for i in range(3)]
    assert all(d["type"] == "wrong_scale" and named in d["msg"] and "reflectance_percent" in d["msg"]
               for d in detail)


def test_one_wrong_scale_spectrum_in_a_batch_is_named(service, benchmark):
    spectra = benchmark.spectra[:4].copy()
    spectra[2] /= 100.0

    detail = predict(service.url, spectra).json()["detail"]

    assert [d["loc"] for d in detail] == [["body", "spectra", 2]]


def test_offset_spectra_get_a_prediction_flagged_with_the_limit_exceeded(service, benchmark):
    resp = predict(service.url, benchmark.spectra[:5] + 6.0)  # still percent reflectance, but brighter soil

    assert resp.status_code == 200
    results = resp.json()["results"]
    assert not any(r["in_domain"] for r in results)
    assert all(re.search(r"(T2|Q residual) [\d.e+-]+ is [\d.]+x its 99% limit", r["reason"]) for r in results)
    assert all(r["interval"] is None and "no interval" in r["reason"] for r in results)
    text = httpx.get(f"{service.url}/metrics").text
    assert re.search(r'soil_model_api_out_of_domain_total\{model_name="soil-soc",model_version="[^"]*"\} '
                     r'([5-9]|\d\d+)', text)


DISTORTIONS = {  # instrument changes that move this model's predictions (bench/bench_domain_distortions.py)
    "offset +2% reflectance": lambda x: x + 2.0,
    "offset +1% reflectance": lambda x: x + 1.0,
    "gain 0.7": lambda x: x * 0.7,
    "shift one band to longer wavelengths": lambda x: np.concatenate([x[:, :1], x[:, :-1]], axis=1),
    "shift one band to shorter wavelengths": lambda x: np.concatenate([x[:, 1:], x[:, -1:]], axis=1),
}


@pytest.mark.parametrize("change", list(DISTORTIONS))
def test_distorted_benchmark_spectra_are_mostly_out_of_domain_without_an_interval(service, benchmark, change):
    """Served as a client would send them, real LimeSoDa spectra after an instrument change are mostly
    flagged; the untouched ones rarely (the anchor: false alarms near the nominal 2%)."""
    untouched = predict(service.url, benchmark.spectra).json()["results"]
    distorted = predict(service.url, DISTORTIONS[change](benchmark.spectra)).json()["results"]

    assert np.mean([not r["in_domain"] for r in untouched]) <= 0.06
    assert np.mean([not r["in_domain"] for r in distorted]) >= 0.5
    assert all(r["interval"] is None for r in distorted if not r["in_domain"])


def test_a_flat_spectrum_is_out_of_domain_and_gets_no_interval(service, benchmark):
    resp = predict(service.url, np.full((1, benchmark.spectra.shape[1]), 50.0))

    assert resp.status_code == 200
    (result,) = resp.json()["results"]
    assert result["in_domain"] is False and result["interval"] is None
    assert re.search(r"spans only 0 .*flat or implausible spectrum", result["reason"])


def test_judge_flags_a_flat_spectrum_the_preprocessed_statistics_miss(loaded, benchmark):
    """The span check is on the raw spectrum, before any preprocessing: even with T2 and Q at zero
    (what a derivative makes of a flat spectrum's features), a flat spectrum is out of domain."""
    judge = DomainJudge(loaded.domain, None, "SOC_target", "%")
    on_benchmark = judge.raw_findings(benchmark.spectra) or [None] * len(benchmark.spectra)
    ordinary = next(i for i, found in enumerate(on_benchmark) if found is None)
    flat = np.full((2, benchmark.spectra.shape[1]), 50.0)
    spectra = np.vstack([benchmark.spectra[ordinary:ordinary + 1], flat])

    results, outside = judge.contexts([1.0, 1.0, 1.0], [0.0] * 3, [0.0] * 3, judge.raw_findings(spectra))

    assert outside == 2 and [r["in_domain"] for r in results] == [True, False, False]
    assert sum(found is not None for found in on_benchmark) <= 4  # raw checks' false alarms on 92 spectra


def test_model_info_describes_the_domain(service):
    info = httpx.get(f"{service.url}/v1/model").json()

    assert info["scale"] == "reflectance_percent"
    domain = info["domain"]
    assert domain["coverage"] == 0.9 and domain["half_width"] > 0
    assert domain["t2_limit"] > 0 and domain["q_limit"] > 0 and 1 <= domain["components"] <= 20
    assert domain["target_min"] < domain["target_max"]
    assert domain["min_span"] > 0 and [c["name"] for c in domain["artefact_checks"]] == ["offset", "gain"]


def test_judge_scores_as_the_trainer_does(loaded, benchmark):
    from soil_trainer.domain import preprocess, score_domain

    features = preprocess(loaded.estimator, benchmark.spectra)
    expected_t2, expected_q = score_domain(loaded.domain, features)
    judge = DomainJudge(loaded.domain, None, "SOC_target", "%")

    t2, q = judge.score(features)

    np.testing.assert_allclose(t2, expected_t2, rtol=1e-9)
    np.testing.assert_allclose(q, expected_q, rtol=1e-7, atol=1e-12)


def test_a_model_without_domain_json_is_served_unjudged(few_band_service):
    bands = httpx.get(f"{few_band_service.url}/v1/model").json()["bands"]

    resp = httpx.post(f"{few_band_service.url}/v1/predict", json={"spectra": [[20.0] * len(bands)]}, timeout=30)

    assert resp.status_code == 200
    (result,) = resp.json()["results"]
    assert result["interval"] is None and result["in_domain"] is None and result["reason"] == NO_DOMAIN
    assert result["value"] == resp.json()["predictions"][0]


def test_domain_bench_meets_its_goals_on_real_data(model_dir, prepared_data):
    """bench/bench_domain.py's figures, loosely: coverage near 90%, few benchmark flags, CV.98 flagged."""
    from bench.bench_domain import measure
    from tests.support import REPO_ROOT

    figures = measure(model_dir, prepared_data / "benchmark.parquet", "CV.98", REPO_ROOT / "params.yaml")

    assert 0.82 <= figures["coverage"] <= 0.97, figures
    assert figures["benchmark_out_of_domain"] <= 0.10, figures
    assert figures["other_out_of_domain"] >= 0.95, figures
    assert figures["fraction_refused"] == figures["absorbance_refused"] == 1.0, figures


def test_a_schema_1_domain_still_serves_and_a_newer_one_is_refused_by_name(loaded, benchmark, tmp_path):
    """domain.json written before min_span (schema 1) loads and is judged by T2 and Q alone; a schema this
    reader does not know stops the load with a message saying what to upgrade."""
    import json

    from soil_model_api.errors import ModelLoadError
    from soil_model_api.model_dir import read_domain

    data = json.loads(loaded.domain.to_json())
    data["schema_version"] = 1
    del data["value_range"]["min_span"], data["artefacts"]
    (tmp_path / "domain.json").write_text(json.dumps(data))
    old = DomainJudge(read_domain(tmp_path), None, "SOC_target", "%")

    features = loaded.predict_with_features(benchmark.spectra)[1]

    assert old.raw_findings(np.full((1, benchmark.spectra.shape[1]), 50.0)) is None
    np.testing.assert_array_equal(old.score(features)[0],
                                  DomainJudge(loaded.domain, None, "SOC_target", "%").score(features)[0])
    data["schema_version"] = 3
    (tmp_path / "domain.json").write_text(json.dumps(data))
    with pytest.raises(ModelLoadError, match="schema_version 3 is newer than this reader's 2; upgrade"):
        read_domain(tmp_path)


@pytest.mark.parametrize("change", [lambda x: x, lambda x: x * 0.7, lambda x: x + 1.0])
def test_judge_flags_what_the_trainer_flags(loaded, benchmark, change):
    """The served flag (T2, Q and the raw checks) is the trainer's reference ``out_of_domain``, spectrum by spectrum."""
    from soil_trainer.domain import out_of_domain, preprocess

    spectra = change(benchmark.spectra)
    judge = DomainJudge(loaded.domain, None, "SOC_target", "%")
    predictions, features = loaded.predict_with_features(spectra)

    served = [not r["in_domain"] for r in judge.results(predictions, judge.score(features), spectra)]

    assert served == out_of_domain(loaded.domain, spectra, preprocess(loaded.estimator, spectra)).tolist()
