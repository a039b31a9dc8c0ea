"""Fixtures for the model-api tests: a real trained model, the benchmark set, a live service."""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from soil_contracts.model import ModelMetadata
from soil_contracts.model_file import TRUSTED_TYPES
from tests.support import REPO_ROOT, free_port, stop_group, wait_for_http

VENV_BIN = Path(sys.executable).parent
BAND_PREFIXES = ("wl_", "wn_")


@dataclass(frozen=True)
class Benchmark:
    bands: list[str]
    spectra: np.ndarray  # benchmark.parquet's bands, float64, in band order
    expected: np.ndarray  # the saved model's own predict() on the benchmark DataFrame
    sample_ids: list[str]
    evaluated: np.ndarray | None  # ``soil-trainer evaluate``'s predictions.csv (printed to 6 decimals)


def train_fixture_model(data_dir: Path, out: Path, band_step: int = 1) -> Path:
    """A small real pipeline (per-spectrum scaling + PLS) saved the way the trainer saves models.

    ``band_step`` > 1 keeps every n-th band, for tests whose cost grows with the band count.
    """
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.cross_decomposition import PLSRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, scale

    reference = pd.read_parquet(data_dir / "reference.parquet")
    bands = [c for c in reference.columns if c.startswith(BAND_PREFIXES)][::band_step]
    X, y = reference[bands].astype("float64"), reference["SOC_target"]
    pipeline = make_pipeline(FunctionTransformer(scale, kw_args={"axis": 1}), PLSRegression(n_components=8))
    pipeline.fit(X, y)
    with warnings.catch_warnings():  # MLflow's own input-example code trips a pandas deprecation
        warnings.filterwarnings("ignore", message="Operation with range is deprecated")
        mlflow.sklearn.save_model(
            pipeline, str(out), serialization_format="skops", skops_trusted_types=list(TRUSTED_TYPES),
            signature=infer_signature(X, pipeline.predict(X)), input_example=X.iloc[:1],
            pip_requirements=["scikit-learn"],  # skip MLflow's slow environment inference
        )
    ModelMetadata(name="soil-soc", git_revision="fixture", data_version="fixture", target="SOC_target", target_unit="%",
                  bands=bands, model="pls", metrics={"rmse": 0.5}).save(out / ModelMetadata.FILE)
    return out


@contextlib.contextmanager
def environment(**values: str):
    """Set environment variables for the block only (session fixtures cannot use monkeypatch)."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def trainer_verbs() -> set[str]:
    """The verbs ``soil-trainer`` offers (its parser lists them)."""
    import argparse

    from soil_trainer.cli import build_parser

    actions = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return {verb for a in actions for verb in a.choices}


@dataclass(frozen=True)
class TrainedModel:
    path: Path
    by_trainer: bool  # made by ``soil-trainer train`` (else the fixture pipeline)
    params: Path


def quick_params(dest: Path) -> Path:
    """The project's params.yaml with a cheaper PLS search (fewer components and folds), same pipeline."""
    import yaml

    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    pls = params.get("train", {}).get("pls", {})
    for key, value in (("max_components", 8), ("cv_folds", 3)):
        if key in pls:
            pls[key] = value
    dest.write_text(yaml.safe_dump(params))
    return dest


@pytest.fixture(scope="session")
def trained_model(prepared_data, mlflow_server, tmp_path_factory) -> TrainedModel:
    """``models/model`` from ``soil-trainer train`` when the trainer has it, else the fixture pipeline."""
    out = tmp_path_factory.mktemp("models") / "model"
    params = quick_params(out.parent / "params.yaml")
    code = None
    if "train" in trainer_verbs():
        from soil_trainer.cli import main as trainer_main

        with environment(MLFLOW_TRACKING_URI=mlflow_server):
            code = trainer_main(["train", "--params", str(params),
                                 "--data-dir", str(prepared_data), "--model-dir", str(out)])
        assert code == 0, f"soil-trainer train exited {code}"
    else:  # a trainer without its train verb: the same kind of pipeline, fitted here
        train_fixture_model(prepared_data, out)
    # A container's non-root user must be able to read the mounted model.
    for path in [out, *out.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return TrainedModel(path=out, by_trainer=code == 0, params=params)


@pytest.fixture(scope="session")
def model_dir(trained_model) -> Path:
    return trained_model.path


@pytest.fixture(scope="session")
def benchmark(prepared_data, trained_model, tmp_path_factory) -> Benchmark:
    """The benchmark spectra, the saved model's predictions for them, and the trainer's evaluate output."""
    from soil_contracts.model_file import load_estimator

    frame = pd.read_parquet(prepared_data / "benchmark.parquet")
    bands = [c for c in frame.columns if c.startswith(BAND_PREFIXES)]
    estimator = load_estimator(trained_model.path)
    expected = np.asarray(estimator.predict(frame[bands]), dtype=np.float64).ravel()
    evaluated = None
    if trained_model.by_trainer and "evaluate" in trainer_verbs():
        from soil_trainer.cli import main as trainer_main

        out = tmp_path_factory.mktemp("evaluate")
        code = trainer_main(["evaluate", "--params", str(trained_model.params),
                             "--model-dir", str(trained_model.path),
                             "--benchmark", str(prepared_data / "benchmark.parquet"),
                             "--metrics", str(out / "metrics.json"), "--predictions", str(out / "predictions.csv"),
                             "--plots-dir", str(out / "plots")])
        assert code in (0, 1), f"soil-trainer evaluate exited {code}"
        predicted = pd.read_csv(out / "predictions.csv").set_index("sample_id")["predicted"]
        evaluated = predicted.loc[frame["sample_id"]].to_numpy(np.float64)
    return Benchmark(bands=bands, spectra=frame[bands].to_numpy(np.float64), expected=expected,
                     sample_ids=frame["sample_id"].tolist(), evaluated=evaluated)


class ServiceRunner:
    """Starts ``soil-model-api serve`` processes on loopback ports and stops them all at the end."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.procs: list[tuple[subprocess.Popen, object]] = []

    def start(self, env: dict[str, str], ready: bool = True, timeout: float = 60.0) -> str:
        port = free_port()
        log_path = self.log_dir / f"service-{port}.log"
        log = open(log_path, "w")  # noqa: SIM115 - open for the process's lifetime, closed in stop_all
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("MODEL_", "MLFLOW_"))}
        full_env.update({"MODEL_API_PORT": str(port), "MODEL_API_HOST": "127.0.0.1", **env})
        proc = subprocess.Popen([str(VENV_BIN / "soil-model-api"), "serve"], env=full_env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append((proc, log))
        url = f"http://127.0.0.1:{port}"
        try:  # /readyz answers 503 until the model passed its self-check
            wait_for_http(f"{url}/readyz" if ready else f"{url}/healthz", timeout=timeout, proc=proc)
        except Exception as exc:  # noqa: BLE001 - any start failure is reported with the service log
            log.flush()
            raise RuntimeError(f"{exc}\n{log_path.read_text()[-3000:]}") from None
        return url

    def stop_all(self) -> None:
        for proc, log in self.procs:
            stop_group(proc)
            log.close()


@pytest.fixture
def cli(monkeypatch):
    """Run ``soil-model-api <argv>`` in process, the model source and registry given by ``env`` only."""
    from soil_model_api.cli import main
    from soil_model_api.config import SOURCE_VARIABLES, get_settings

    def run(argv: list[str], env: dict[str, str]) -> int:
        for var in (*SOURCE_VARIABLES, "MLFLOW_TRACKING_URI", "MODEL_API_MAX_BATCH"):
            monkeypatch.delenv(var, raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()
        try:
            return main(argv)
        finally:
            get_settings.cache_clear()

    return run


class InProcessClient:
    """Blocking ``get``/``post`` on an app whose event loop runs in a thread (its background tasks go on
    between requests, as in the service)."""

    def __init__(self, portal, client: httpx.AsyncClient):
        self._portal, self._client = portal, client

    def get(self, path: str, **kwargs) -> httpx.Response:
        """``GET path`` on the app."""
        return self._portal.call(functools.partial(self._client.get, path, **kwargs))

    def post(self, path: str, **kwargs) -> httpx.Response:
        """``POST path`` on the app."""
        return self._portal.call(functools.partial(self._client.post, path, **kwargs))


@pytest.fixture
def in_process(monkeypatch):
    """Start the app ``soil-model-api serve`` runs, in this process, and return a client for it.

    ``start(env)`` reads the settings from ``env`` only, as ``serve`` does (no other ``MODEL_*``/``MLFLOW_*``),
    builds the same application (``serve.asgi_app``), and runs its lifespan on an event loop of its
    own thread, so the model loads and self-checks at start and scheduled drift checks run, as in the service.
    Requests go over httpx's ASGI transport, not uvicorn: the server itself is exercised by the ``service``
    tests; this saves a process start and its imports (~4 CPU-s each).
    """
    from anyio.from_thread import start_blocking_portal

    from soil_model_api.config import get_settings
    from soil_model_api.serve import asgi_app

    stack = contextlib.ExitStack()

    def start(env: dict[str, str], ready: bool = True, timeout: float = 60.0) -> InProcessClient:
        for key in [k for k in os.environ if k.startswith(("MODEL_", "MLFLOW_"))]:
            monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()
        try:
            settings = get_settings()
        finally:
            get_settings.cache_clear()
        app = asgi_app(settings)  # serve's own application, model source checked first
        portal = stack.enter_context(start_blocking_portal())
        stack.enter_context(portal.wrap_async_context_manager(app.api.router.lifespan_context(app.api)))
        transport = httpx.ASGITransport(app=app)
        client = InProcessClient(portal, stack.enter_context(portal.wrap_async_context_manager(
            httpx.AsyncClient(transport=transport, base_url="http://api", timeout=120))))
        deadline = time.monotonic() + timeout
        while ready and (answer := client.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, f"not ready after {timeout}s: {answer.text}"
            time.sleep(0.1)
        return client

    with stack:
        yield start


@pytest.fixture(scope="session")
def services(tmp_path_factory):
    runner = ServiceRunner(tmp_path_factory.mktemp("service-logs"))
    yield runner
    runner.stop_all()


@dataclass(frozen=True)
class LiveService:
    url: str
    slot: str
    image_tag: str
    max_batch: int
    head_timeout: float = 10.0
    max_head_bytes: int = 16 * 1024


@pytest.fixture(scope="session")
def service(services, model_dir) -> LiveService:
    """One live ``soil-model-api serve`` on the trained model, shared by the tests that send it requests and by
    test_protocol's slow and oversized heads: its head deadline (1 s) and head cap (8 KiB) are below the
    defaults so those tests finish quickly; the other tests send whole heads of a few hundred bytes at once.
    """
    slot, tag, max_batch, head_timeout, max_head_bytes = "green", "sha-0123abc", 100, 1.0, 8192
    url = services.start({"MODEL_DIR": str(model_dir), "MODEL_API_SLOT": slot, "MODEL_API_IMAGE_TAG": tag,
                          "MODEL_API_MAX_BATCH": str(max_batch), "MODEL_API_HEAD_TIMEOUT_SECONDS": str(head_timeout),
                          "MODEL_API_MAX_HEAD_BYTES": str(max_head_bytes)})
    return LiveService(url=url, slot=slot, image_tag=tag, max_batch=max_batch, head_timeout=head_timeout,
                       max_head_bytes=max_head_bytes)


@contextlib.contextmanager
def uvicorn_in_thread(settings):
    """serve's application under uvicorn with serve's options (``serve.uvicorn_options``), on a thread of this
    process: the real HTTP server without a process start and its imports (~4 CPU-s). Yields its URL once the
    model passed its self-check."""
    import threading

    import uvicorn

    from soil_model_api.serve import asgi_app, uvicorn_options

    server = uvicorn.Server(uvicorn.Config(asgi_app(settings), **uvicorn_options(settings)))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    url = f"http://{settings.host}:{settings.port}"
    try:
        deadline = time.monotonic() + 60
        with httpx.Client(base_url=url, timeout=10) as client:
            while not server.started or client.get("/readyz").status_code != 200:
                assert thread.is_alive(), "uvicorn stopped before it was ready"
                assert time.monotonic() < deadline, "not ready after 60 s"
                time.sleep(0.1)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="session")
def few_band_service(prepared_data, tmp_path_factory) -> LiveService:
    """A live server on a real PLS model of every 40th band (21 bands), so generated requests stay small.

    Served by ``uvicorn_in_thread``: the fuzz and no-domain tests that use it check the application's
    answers over HTTP, not the ``serve`` process (the ``service`` tests and test_protocol do).
    """
    from soil_model_api.config import Settings

    out = train_fixture_model(prepared_data, tmp_path_factory.mktemp("few-band") / "model", band_step=40)
    settings = Settings(model_dir=out, max_batch=20, host="127.0.0.1", port=free_port())
    with uvicorn_in_thread(settings) as url:
        yield LiveService(url=url, slot="", image_tag="", max_batch=20)
