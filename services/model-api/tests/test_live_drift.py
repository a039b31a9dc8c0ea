"""live_drift: recent traffic is tested against the calibration sample by the drift gate's own method."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest

from soil_contracts.domain import CalibrationSample
from soil_model_api.app import create_app
from soil_model_api.config import Settings
from soil_model_api.live_drift import SpectraWindow
from soil_model_api.model_dir import load_from_dir

WINDOW = 60
OFFSET = 1.0  # percent reflectance added to every band: a detector offset, ~3% of the mean spectrum


def predict(client, spectra: np.ndarray) -> None:
    resp = client.post("/v1/predict", json={"spectra": spectra.tolist()})
    assert resp.status_code == 200, resp.text


def drift(client) -> dict:
    resp = client.get("/v1/drift")
    assert resp.status_code == 200, resp.text
    return resp.json()


def metric(client, name: str, **labels: str) -> float:
    """The value of one sample of ``name`` whose labels include ``labels``."""
    text = client.get("/metrics").text
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(?P<labels>[^}}]*)\}} (?P<value>\S+)", line)
        if match and all(f'{k}="{v}"' in match["labels"] for k, v in labels.items()):
            return float(match["value"])
    raise AssertionError(f"no {name} {labels} in /metrics:\n{text[-2000:]}")


def test_window_keeps_the_last_rows_in_arrival_order():
    window = SpectraWindow(capacity=5, n_bands=2)
    rows = np.arange(16, dtype=np.float64).reshape(8, 2)

    window.add(rows[:3])
    assert window.snapshot().tolist() == rows[:3].tolist()
    window.add(rows[3:7], outside=np.array([True, False, False, True]))  # wraps around the end

    assert window.snapshot().tolist() == rows[2:7].tolist()
    assert (window.size, window.seen) == (5, 7)
    assert window.out_of_domain_ratio() == pytest.approx(2 / 5)
    window.add(np.vstack([rows] * 3))  # a batch longer than the window keeps its last rows
    assert window.snapshot().tolist() == np.vstack([rows] * 3)[-5:].tolist()
    assert window.snapshot().dtype == np.float32


def test_window_memory_stays_fixed_however_much_traffic_passes():
    window = SpectraWindow(capacity=200, n_bands=430)
    before = window.nbytes
    spectra = np.random.default_rng(0).uniform(5, 60, (37, 430))

    for _ in range(100):
        window.add(spectra)

    assert window.nbytes == before == 200 * 430 * 4 + 200
    assert (window.size, window.seen) == (200, 3700)


def test_drift_turns_fail_on_offset_spectra_and_back_to_pass_on_benchmark_spectra(in_process, model_dir,
                                                                                  benchmark):
    """The issue's demonstration, through /v1/predict, /v1/drift and /metrics of the app serve runs.

    In process (the ``in_process`` fixture); the built image answers /v1/drift over HTTP in test_image.
    """
    assert (model_dir / CalibrationSample.FILE).exists()
    client = in_process({"MODEL_DIR": str(model_dir), "MODEL_API_SLOT": "blue",
                          "MODEL_API_DRIFT_WINDOW": str(WINDOW), "MODEL_API_DRIFT_INTERVAL_SECONDS": "0"})
    labels = {"model_name": "soil-soc", "slot": "blue"}
    clean = benchmark.spectra[:WINDOW]

    empty = drift(client)
    assert empty["status"] == "insufficient_data" and empty["window"]["rows"] == 0
    assert empty["window"]["min_rows"] == 20 and empty["window"]["capacity"] == WINDOW

    predict(client, clean)
    before = drift(client)
    assert before["status"] == "pass", before["summary"]
    assert before["drift_detected"] is False and before["p_value"] > before["alpha"]
    assert metric(client, "soil_model_api_drift_status", status="pass", **labels) == 1

    for start in range(0, WINDOW, 20):  # as separate requests, as live traffic comes
        predict(client, clean[start:start + 20] + OFFSET)
    shifted = drift(client)
    assert shifted["status"] == "fail", shifted["summary"]
    assert shifted["window"] == {**shifted["window"], "rows": WINDOW, "spectra_seen": 2 * WINDOW}
    names = [f["name"] for f in shifted["findings"] if f["drifted"]]
    assert "baseline offset" in names, names
    assert shifted["p_value"] <= shifted["alpha"]
    assert metric(client, "soil_model_api_drift_status", status="fail", **labels) == 1
    assert metric(client, "soil_model_api_drift_status", status="pass", **labels) == 0
    assert metric(client, "soil_model_api_drift_p_value", **labels) <= 0.025

    predict(client, clean)
    after = drift(client)
    assert after["status"] == "pass", after["summary"]
    assert after["window"]["rows"] == WINDOW and after["window"]["spectra_seen"] == 3 * WINDOW
    assert metric(client, "soil_model_api_drift_status", status="pass", **labels) == 1
    assert metric(client, "soil_model_api_drift_p_value", **labels) > 0.025
    assert metric(client, "soil_model_api_drift_checks_total", status="fail", **labels) == 1
    assert metric(client, "soil_model_api_hotelling_t2_limit_ratio_count", **labels) == 3 * WINDOW
    assert metric(client, "soil_model_api_q_residual_limit_ratio_count", **labels) == 3 * WINDOW


def test_scheduled_check_publishes_the_verdict_without_a_request(in_process, model_dir, benchmark):
    client = in_process({"MODEL_DIR": str(model_dir), "MODEL_API_DRIFT_WINDOW": "30",
                          "MODEL_API_DRIFT_INTERVAL_SECONDS": "0.5"})
    predict(client, benchmark.spectra[:30] + 3 * OFFSET)

    deadline = time.monotonic() + 60
    while metric(client, "soil_model_api_drift_status", status="fail") != 1:
        assert time.monotonic() < deadline, "the scheduled check never published a failing verdict"
        time.sleep(0.5)
    assert metric(client, "soil_model_api_drift_window_spectra") == 30


def test_out_of_domain_spectra_show_in_the_window_ratio_and_the_histograms(model_dir, benchmark):
    loaded = load_from_dir(model_dir)
    app = create_app(Settings(model_dir=model_dir, drift_window=20, drift_interval_seconds=0), model=loaded)
    # A tilt from x0.5 to x1.5 across the bands: a shape far outside the calibration spectra (a uniform gain
    # is not: in absorbance it is an offset along the brightness the calibration soils already vary in).
    far = benchmark.spectra[:10] * np.linspace(0.5, 1.5, benchmark.spectra.shape[1])

    async def run():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
            flags = []
            for spectra in (benchmark.spectra[:10], far):
                body = (await client.post("/v1/predict", json={"spectra": spectra.tolist()})).json()
                flags += [r["in_domain"] for r in body["results"]]
            return flags, (await client.get("/v1/drift")).json(), (await client.get("/metrics")).text

    flags, report, text = asyncio.run(run())

    assert report["window"]["out_of_domain_ratio"] == pytest.approx(flags.count(False) / 20)
    assert flags[10:].count(False) >= 9
    above = {}  # spectra above each limit: all minus the le="1" bucket
    for name in ("hotelling_t2", "q_residual"):
        found = re.search(rf'soil_model_api_{name}_limit_ratio_bucket\{{le="1",[^}}]*\}} (\S+)', text)
        assert found, text
        above[name] = 20 - float(found[1])
    outside = flags.count(False)  # out of domain = T2 or Q above its limit
    assert max(above.values()) <= outside <= sum(above.values())


def test_model_without_calibration_sample_reports_unavailable(model_dir, tmp_path):
    old = tmp_path / "model"
    shutil.copytree(model_dir, old)
    (old / CalibrationSample.FILE).unlink()
    app = create_app(Settings(model_dir=old, drift_interval_seconds=0), model=load_from_dir(old))

    async def get():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
            return await client.get("/v1/drift")

    body = asyncio.run(get()).json()

    assert body["status"] == "unavailable" and body["drift_detected"] is None
    assert "calibration_sample.json" in body["summary"]


def test_serving_imports_the_gate_without_pandas_or_matplotlib():
    """The image leaves soil-drift's file readers and plot stack out; the API must never need them."""
    code = ("import sys, soil_model_api.app, soil_model_api.live_drift; "
            "print(sorted(m for m in ('pandas', 'pyarrow', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout

    assert out.strip() == "[]"


@pytest.mark.parametrize("batch", [1, 40])  # the per-float path and the numpy path
def test_flat_spectra_count_out_of_domain_in_the_window_even_below_both_limits(benchmark, batch):
    """A flat spectrum is out of domain by the span check alone (T2 and Q below their limits here, as a
    derivative model's features can leave them); the window's ratio counts it as the response does."""
    from prometheus_client import CollectorRegistry

    from soil_drift.config import DriftParams
    from soil_model_api.live_drift import LiveDrift
    from soil_model_api.metrics import LiveTrafficMetrics

    bands = [f"wl_{350 + 5 * i}" for i in range(benchmark.spectra.shape[1])]
    live = LiveDrift(None, bands, 100, DriftParams(), LiveTrafficMetrics(CollectorRegistry(), "m", "1", ""), "m")
    spectra = benchmark.spectra[:batch]
    flat = [None] * batch
    flat[0] = 0.0

    live.observe(spectra, ([0.5] * batch, [0.5] * batch), 1.0, 1.0, flat)

    assert live.window.out_of_domain_ratio() == pytest.approx(1 / batch)
