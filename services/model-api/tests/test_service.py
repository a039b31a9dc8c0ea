"""The real service (``soil-model-api serve``, uvicorn on a loopback port) on a real trained model."""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import time

import httpx
import numpy as np
import pytest


def predict(url: str, body) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{url}/v1/predict", content=content, headers={"Content-Type": "application/json"},
                      timeout=30)


def test_predictions_equal_the_trainers_for_the_benchmark_set(service, benchmark):
    resp = predict(service.url, {"spectra": benchmark.spectra.tolist()})

    assert resp.status_code == 200, resp.text
    body = resp.json()
    np.testing.assert_allclose(body["predictions"], benchmark.expected, rtol=0, atol=1e-9)
    if benchmark.evaluated is not None:  # soil-trainer evaluate prints 6 decimals
        np.testing.assert_allclose(body["predictions"], benchmark.evaluated, rtol=0, atol=5.1e-7)
    assert body["bands"] == benchmark.bands
    assert body["model_name"] == "soil-soc"
    assert body["target"] == "SOC_target"


def test_spectra_by_band_name_in_any_key_order_predict_the_same(service, benchmark):
    rows = []
    for values in benchmark.spectra[:5]:
        pairs = list(zip(benchmark.bands, values.tolist(), strict=True))
        random.Random(len(rows)).shuffle(pairs)
        rows.append(dict(pairs))

    resp = predict(service.url, {"spectra": rows})

    assert resp.status_code == 200, resp.text
    np.testing.assert_allclose(resp.json()["predictions"], benchmark.expected[:5], rtol=0, atol=1e-9)


def test_model_endpoint_reports_lineage_bands_slot_and_image_tag(service, model_dir, benchmark):
    info = httpx.get(f"{service.url}/v1/model").json()
    lineage = json.loads((model_dir / "soilci.json").read_text())

    assert info["name"] == lineage["name"]
    assert info["version"] == lineage["version"]
    assert info["git_revision"] == lineage["git_revision"]
    assert info["data_version"] == lineage["data_version"]
    assert info["metrics"] == pytest.approx(lineage["metrics"])
    assert info["bands"] == benchmark.bands and info["n_bands"] == len(benchmark.bands)
    assert (info["slot"], info["image_tag"]) == (service.slot, service.image_tag)
    assert info["alias"] is None
    assert info["max_batch"] == service.max_batch


def test_health_and_readiness_report_a_passed_self_check(service):
    assert httpx.get(f"{service.url}/healthz").json() == {"status": "alive"}
    ready = httpx.get(f"{service.url}/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert ready.json()["self_check"]["ok"] is True
    assert np.isfinite(ready.json()["self_check"]["prediction"])


def spectrum(n: int, value: str = "0.25") -> str:
    return "[" + ",".join([value] * n) + "]"


BAD_INPUTS = [
    # (name, body builder given n_bands, status, expected loc, message fragment)
    ("nan", lambda n: '{"spectra": [[NaN' + ",0.3" * (n - 1) + "]]}", 422, ["body", "spectra", 0, 0], "NaN"),
    ("infinity", lambda n: '{"spectra": [[0.3, Infinity' + ",0.3" * (n - 2) + "]]}", 422,
     ["body", "spectra", 0, 1], "Infinity"),
    ("overflow to infinity", lambda n: '{"spectra": [[0.3, 0.3, -1e999' + ",0.3" * (n - 3) + "]]}", 422,
     ["body", "spectra", 0, 2], "-Infinity"),
    ("string", lambda n: '{"spectra": [["0.3"' + ",0.3" * (n - 1) + "]]}", 422, ["body", "spectra", 0, 0],
     "got string"),
    ("boolean", lambda n: '{"spectra": [[true' + ",0.3" * (n - 1) + "]]}", 422, ["body", "spectra", 0, 0],
     "got boolean"),
    ("null", lambda n: '{"spectra": [[null' + ",0.3" * (n - 1) + "]]}", 422, ["body", "spectra", 0, 0],
     "got null"),
    ("nested array", lambda n: '{"spectra": [[[0.3]' + ",0.3" * (n - 1) + "]]}", 422, ["body", "spectra", 0, 0],
     "got array"),
    ("too few bands", lambda n: '{"spectra": [' + spectrum(n - 1) + "]}", 422, ["body", "spectra", 0],
     "got {n1}"),
    ("too many bands", lambda n: '{"spectra": [' + spectrum(n) + "," + spectrum(n + 1) + "]}", 422,
     ["body", "spectra", 1], "got {n2}"),
    ("empty batch", lambda n: '{"spectra": []}', 422, ["body", "spectra"], "empty batch"),
    ("spectra missing", lambda n: "{}", 422, ["body", "spectra"], "required"),
    ("unknown field", lambda n: '{"spectra": [' + spectrum(n) + '], "model_uri": "/tmp/x"}', 422,
     ["body", "model_uri"], "unknown field"),
    ("not an object", lambda n: "[1, 2]", 422, ["body"], "got array"),
    ("spectrum not a list", lambda n: '{"spectra": ["abc"]}', 422, ["body", "spectra", 0], "got string"),
    ("invalid json", lambda n: '{"spectra": [[0.1,', 422, ["body"], "not valid JSON"),
    ("empty body", lambda n: "", 422, ["body"], "empty"),
    ("batch above the limit", lambda n: '{"spectra": [' + ",".join([spectrum(n)] * 101) + "]}", 413,
     ["body", "spectra"], "limit of 100"),
]


@pytest.mark.parametrize("name,build,status,loc,fragment", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_is_rejected_with_the_field_and_the_reason(service, benchmark, name, build, status, loc,
                                                             fragment):
    n = len(benchmark.bands)
    resp = predict(service.url, build(n).encode())

    assert resp.status_code == status, resp.text
    first = resp.json()["detail"][0]
    assert first["loc"] == loc
    assert fragment.format(n1=n - 1, n2=n + 1) in first["msg"]


def test_wrong_band_names_are_listed_as_missing_and_unknown(service, benchmark):
    row = dict(zip(benchmark.bands, benchmark.spectra[0].tolist(), strict=True))
    row.pop(benchmark.bands[3])
    row["wl_9999"] = 0.3

    resp = predict(service.url, {"spectra": [row]})

    assert resp.status_code == 422
    detail = resp.json()["detail"][0]
    assert detail["loc"] == ["body", "spectra", 0]
    assert f"missing 1 bands ({benchmark.bands[3]})" in detail["msg"]
    assert "1 unknown bands (wl_9999)" in detail["msg"]


def test_band_value_errors_in_objects_name_the_band(service, benchmark):
    row = dict(zip(benchmark.bands, benchmark.spectra[0].tolist(), strict=True))
    row[benchmark.bands[7]] = "high"

    resp = predict(service.url, {"spectra": [row]})

    assert resp.status_code == 422
    assert resp.json()["detail"][0]["loc"] == ["body", "spectra", 0, benchmark.bands[7]]


def test_service_stays_correct_after_a_stream_of_bad_requests(service, benchmark):
    rng = random.Random(5)
    n = len(benchmark.bands)
    garbage = [build(n).encode() for _, build, *_ in BAD_INPUTS]
    garbage += [bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 300))) for _ in range(30)]
    garbage.append(b'{"spectra": [' + b"[" * 5000 + b"]" * 5000 + b"]}")
    extreme = [b'{"spectra": [[1e308' + b",1e308" * (n - 1) + b"]]}", b'{"spectra": [[0' + b",0" * (n - 1) + b"]]}",
               b'{"spectra": [[-5e-324' + b",1.7976931348623157e308" * (n - 1) + b"]]}"]
    with httpx.Client(base_url=service.url, timeout=30) as client:
        for body in garbage:
            resp = client.post("/v1/predict", content=body, headers={"Content-Type": "application/json"})
            assert 400 <= resp.status_code < 500, (body[:80], resp.status_code, resp.text[:200])
        for body in extreme:  # finite, but on no soil spectrum's scale (1e308 once predicted -1605 with a 200)
            resp = client.post("/v1/predict", content=body, headers={"Content-Type": "application/json"})
            assert resp.status_code == 422, (body[:80], resp.status_code, resp.text[:200])
            assert resp.json()["detail"][0]["type"] == "wrong_scale"
        good = client.post("/v1/predict", json={"spectra": benchmark.spectra[:10].tolist()})

    assert good.status_code == 200
    np.testing.assert_allclose(good.json()["predictions"], benchmark.expected[:10], rtol=0, atol=1e-9)
    assert httpx.get(f"{service.url}/readyz").status_code == 200


def test_metrics_count_requests_and_predictions_by_model_version(service, benchmark):
    predict(service.url, {"spectra": benchmark.spectra[:3].tolist()})
    predict(service.url, {"spectra": []})

    text = httpx.get(f"{service.url}/metrics").text

    assert re.search(r'soil_model_api_requests_total\{method="POST",route="/v1/predict",status="200"\} [1-9]', text)
    assert re.search(r'soil_model_api_requests_total\{method="POST",route="/v1/predict",status="422"\} [1-9]', text)
    assert 'soil_model_api_request_duration_seconds_bucket{le="0.005",method="POST",route="/v1/predict"}' in text
    assert re.search(r'soil_model_api_predictions_total\{model_name="soil-soc",model_version="[^"]*"\} '
                     r'([3-9]|\d\d+)', text)
    assert re.search(r'soil_model_api_model_info\{.*slot="green".*\} 1.0', text)
    assert "soil_model_api_ready 1.0" in text
    assert "process_resident_memory_bytes" in text


def test_no_endpoint_takes_a_model_location_from_the_client(service):
    spec = httpx.get(f"{service.url}/openapi.json").json()
    operations = {(path, method) for path, ops in spec["paths"].items() for method in ops}

    assert operations == {("/v1/predict", "post"), ("/v1/model", "get"), ("/healthz", "get"),
                          ("/readyz", "get"), ("/metrics", "get"), ("/v1/drift", "get")}
    assert not spec["paths"]["/v1/drift"]["get"].get("parameters")  # reads the service's own window only
    body = spec["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["additionalProperties"] is False
    assert list(body["schema"]["properties"]) == ["spectra"]


def test_openapi_publishes_the_models_bands_and_examples(service, benchmark):
    spec = httpx.get(f"{service.url}/openapi.json").json()
    content = spec["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["application/json"]
    as_array, as_object = content["schema"]["properties"]["spectra"]["items"]["oneOf"]

    assert as_array["minItems"] == as_array["maxItems"] == len(benchmark.bands)
    assert as_object["required"] == benchmark.bands and as_object["additionalProperties"] is False
    assert content["schema"]["properties"]["spectra"]["maxItems"] == service.max_batch
    example = content["examples"]["array"]["value"]
    assert predict(service.url, example).status_code == 200
    assert predict(service.url, content["examples"]["by_band"]["value"]).status_code == 200


def test_missing_model_keeps_the_process_alive_but_not_ready(in_process, tmp_path):
    """serve's application in process (the ``in_process`` fixture): its lifespan starts without the model,
    which is what keeps uvicorn, and so the process, running; the endpoints answer as they would over HTTP."""
    client = in_process({"MODEL_DIR": str(tmp_path / "no-model")}, ready=False)

    for _ in range(150):  # the load runs beside the started app; it fails at once on a missing directory
        ready = client.get("/readyz")
        if ready.json()["detail"]:
            break
        time.sleep(0.2)
    assert client.get("/healthz").status_code == 200
    assert ready.status_code == 503
    assert "no-model" in ready.json()["detail"] and ready.json()["status"] == "failed"
    assert client.post("/v1/predict", json={"spectra": [[0.1]]}).status_code == 503
    assert client.get("/v1/model").status_code == 503


def test_check_loads_and_self_checks_the_model(cli, capsys, model_dir):
    assert cli(["check"], {"MODEL_DIR": str(model_dir)}) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["self_check"]["ok"] is True


CHROMIUM = next((c for c in ("chromium", "chromium-browser", "google-chrome") if shutil.which(c)), None)
# Every host name but loopback fails to resolve: the page gets no network beyond the service.
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"


def headless(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", OFFLINE,
                           "--virtual-time-budget=15000", *args], check=True, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine")
def test_docs_and_redoc_render_in_chromium_without_network(service, tmp_path):
    from PIL import Image

    shot = tmp_path / "docs.png"  # one load of /docs gives both its DOM and its screenshot
    swagger = headless("--dump-dom", "--window-size=1200,900", f"--screenshot={shot}", f"{service.url}/docs").stdout
    redoc = headless("--dump-dom", f"{service.url}/redoc").stdout

    assert 'data-path="/v1/predict"' in swagger and 'data-path="/v1/model"' in swagger
    assert "/v1/predict" in redoc and "soil-model-api" in redoc
    pixels = np.asarray(Image.open(shot).convert("L"))
    assert (pixels < 200).mean() > 0.02  # text and operation bands, not a blank page
