"""Load benchmark: soil-model-api against MLServer and a bare-ASGI floor serving the same model, side by side.

    .venv/bin/python bench/bench_api.py [--anchors mlserver floor mlflow] [--repeat 3]

Starts every server on loopback ports (one process each): soil-model-api with its domain.json
(intervals and the applicability-domain flag on); MLServer 1.x with its scikit-learn runtime on the same
fitted pipeline (joblib), from its own venv made with uv on first use (``--mlserver-venv``); the floor,
bench/_asgi_floor.py (uvicorn + orjson + the model folded into one weight vector, no validation), from
this venv; optionally `mlflow models serve`. It checks they all return the same predictions, then drives
each with the same bounded load (single-spectrum and 100-spectrum requests, keep-alive connections, a
fixed number of requests per scenario) ``--repeat`` times, alternating the servers' order, and prints
requests per second, p50/p99 latency, server CPU per request, and min/median/max of the ratios
soil-model-api / anchor, the resident memory of each server and the size of the model-api image.
The load generator writes pre-encoded HTTP/1.1 requests on raw asyncio sockets, so the client costs
far less CPU than the servers it measures on the same two cores.

``--baseline-ref main`` also serves the model with soil-model-api as it is at that git revision (its
``libs/contracts/src`` and ``services/model-api/src`` exported with ``git archive`` to a temp dir and put
first on ``PYTHONPATH``, run with this venv): one more server in the same alternating repetitions, so a
change is measured against its own before in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


@dataclass
class Result:
    server: str
    scenario: str
    requests: int
    errors: int
    seconds: float
    latencies: np.ndarray
    cpu_seconds: float  # server process tree CPU time (user + system) spent on the run

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu_seconds / self.requests * 1000

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies, q) * 1000)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_request(port: int, path: str, body: bytes) -> bytes:
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n")
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
    if "content-length" in headers:
        return status, await reader.readexactly(int(headers["content-length"]))
    body = b""  # chunked transfer encoding
    while True:
        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
        chunk = await reader.readexactly(size + 2)
        if size == 0:
            return status, body
        body += chunk[:-2]


async def drive(port: int, raw: bytes, n_requests: int, concurrency: int, max_seconds: float):
    """Send ``raw`` ``n_requests`` times over ``concurrency`` keep-alive connections."""
    latencies: list[float] = []
    errors = 0
    remaining = n_requests
    deadline = time.perf_counter() + max_seconds

    async def worker():
        nonlocal remaining, errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while remaining > 0 and time.perf_counter() < deadline:
                remaining -= 1
                start = time.perf_counter()
                writer.write(raw)
                status, _ = await read_response(reader)
                latencies.append(time.perf_counter() - start)
                errors += status != 200
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(latencies), errors, time.perf_counter() - start, np.array(latencies)


def post_json(port: int, path: str, body: bytes) -> dict:
    import httpx

    resp = httpx.post(f"http://127.0.0.1:{port}{path}", content=body,
                      headers={"Content-Type": "application/json"}, timeout=60)
    resp.raise_for_status()
    return resp.json()


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} not ready after {timeout}s")


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and its children so far."""
    import psutil

    proc = psutil.Process(pid)
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def tree_rss(pid: int) -> int:
    """Resident memory of a process and all its children, in bytes."""
    import psutil

    proc = psutil.Process(pid)
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "w") as out:  # the child keeps its own descriptor
        return subprocess.Popen(cmd, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def image_size(name: str) -> int | None:
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:
        return None
    try:
        return int(docker.from_env(timeout=10).images.get(name).attrs["Size"])
    except DockerException:  # no engine or no image: the size is simply not reported
        return None


def load_spectra(path: Path, bands: list[str]) -> np.ndarray:
    import pandas as pd

    frame = pd.read_parquet(path)
    return np.ascontiguousarray(frame[bands].to_numpy(np.float64))


def model_bands(model_dir: Path) -> list[str]:
    import yaml

    mlmodel = yaml.safe_load((model_dir / "MLmodel").read_text())
    return [c["name"] for c in json.loads(mlmodel["signature"]["inputs"])]


MLSERVER_VENV = Path("/var/tmp/soilci-bench/mlserver")


def ensure_mlserver(venv: Path) -> Path:
    """The venv's ``mlserver`` script; created with uv (MLServer, its scikit-learn runtime, our scikit-learn)."""
    import sklearn

    script = venv / "bin" / "mlserver"
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import mlserver_sklearn, sklearn; print(sklearn.__version__)"]
    found = subprocess.run(probe, capture_output=True, text=True, check=False) if python.exists() else None
    if found is not None and found.returncode == 0 and found.stdout.strip() == sklearn.__version__:
        return script
    print(f"installing MLServer into {venv} ...", flush=True)
    subprocess.run(["uv", "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    # The pickled pipeline needs the scikit-learn version that fitted it.
    subprocess.run(["uv", "pip", "install", "-q", "--python", str(python), "mlserver", "mlserver-sklearn",
                    f"scikit-learn=={sklearn.__version__}"], check=True)
    return script


def load_estimator(model_dir: Path):
    os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    import mlflow.sklearn

    return mlflow.sklearn.load_model(str(model_dir))


# Steps the floor runs as they are (not linear, or a matrix before a step that is not); every step
# after the last of them, and PLS, is folded into one weight vector.
FLOOR_STEPS = {"log10": "log10", "absorbance": "negative", "resample": "resample", "snv": "snv"}
NONLINEAR = {"log10", "snv"}


def fold(estimator, n_bands: int) -> dict[str, np.ndarray]:
    """The trainer's pipeline as the floor's arithmetic: its own steps up to the last nonlinear one, then
    ``x @ weights + offset`` for the rest (Savitzky-Golay, resampling, centring and PLS are linear in x).

    Returns ``ops`` (names the floor applies in order: log10, negative, resample, snv), ``resample``
    (the resampling matrix, when used), ``weights`` (n_features,) and ``offset``, for ``np.savez``.
    The folded part is probed with the identity matrix, so it holds for any linear tail.
    """
    from sklearn.pipeline import Pipeline

    steps = list(estimator.steps)
    if steps[-1][0] != "model" or any(name not in (*FLOOR_STEPS, "savgol") for name, _ in steps[:-1]):
        raise SystemExit(f"bench_api: the floor folds the trainer's pipelines only, not {[n for n, _ in steps]}")
    cut = max((i + 1 for i, (name, _) in enumerate(steps) if name in NONLINEAR), default=0)
    ops, resample = [], None
    for name, step in steps[:cut]:
        ops.append(FLOOR_STEPS[name])
        if name == "resample":
            resample = np.asarray(step.kw_args["b"], dtype=np.float64)
    tail = Pipeline(steps[cut:])
    width = Pipeline(steps[:cut]).transform(np.ones((1, n_bands))).shape[1] if cut else n_bands
    base = np.asarray(tail.predict(np.zeros((1, width))), dtype=np.float64).ravel()
    weights = np.asarray(tail.predict(np.eye(width)), dtype=np.float64).ravel() - base[0]
    out = {"ops": np.array(ops, dtype="U16"), "weights": weights, "offset": np.float64(base[0])}
    if resample is not None:
        out["resample"] = resample
    return out


def mlserver_repository(workdir: Path, estimator, http_port: int, grpc_port: int) -> Path:
    import joblib

    root = workdir / "mlserver"
    (root / "soil").mkdir(parents=True)
    joblib.dump(estimator, root / "soil" / "model.joblib")
    (root / "settings.json").write_text(json.dumps({
        "http_port": http_port, "grpc_port": grpc_port, "metrics_endpoint": None, "parallel_workers": 0,
        "debug": False}))
    (root / "soil" / "model-settings.json").write_text(json.dumps({
        "name": "soil", "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib"}}))
    return root


def spread(values: list[float], fmt: str = "{:.2f}") -> str:
    return "/".join(fmt.format(v) for v in (min(values), float(np.median(values)), max(values)))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model-dir", type=Path, default=REPO_ROOT / "models" / "model")
    p.add_argument("--benchmark", type=Path, default=REPO_ROOT / "data" / "benchmark.parquet")
    p.add_argument("--single-requests", type=int, default=3000, help="requests per single-spectrum run")
    p.add_argument("--batch-requests", type=int, default=300, help="requests per 100-spectrum run")
    p.add_argument("--concurrency", type=int, default=4, help="keep-alive connections")
    p.add_argument("--max-seconds", type=float, default=60, help="cap on each run")
    p.add_argument("--image", default="soil-model-api:local", help="image whose size is reported")
    p.add_argument("--pin", action="store_true", help="servers on CPU 0, load generator on CPU 1")
    p.add_argument("--blas-threads", type=int, default=1, help="OpenBLAS/OpenMP threads of both servers")
    p.add_argument("--out", type=Path, help="also write the results as JSON here")
    p.add_argument("--anchors", nargs="+", choices=["mlserver", "floor", "mlflow"], default=["mlserver", "floor"])
    p.add_argument("--repeat", type=int, default=3, help="alternating repetitions of every scenario")
    p.add_argument("--mlserver-venv", type=Path, default=MLSERVER_VENV)
    p.add_argument("--baseline-ref", help="also serve soil-model-api as it is at this git revision (e.g. main)")
    return p.parse_args(argv)


BASELINE_SOURCES = ("libs/contracts/src", "services/model-api/src")


def export_revision(ref: str, dest: Path) -> list[Path]:
    """The contracts' and the model API's sources at git revision ``ref``, extracted under ``dest``.

    Returns:
        The two ``src`` directories, to go first on ``PYTHONPATH``.

    Raises:
        ValueError: ``ref`` is not a revision of this repository, or it lacks those directories.
    """
    archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", "--format=tar", ref, *BASELINE_SOURCES],
                             capture_output=True, check=False)
    if archive.returncode != 0:
        raise ValueError(f"cannot export {', '.join(BASELINE_SOURCES)} at {ref!r}: "
                         f"{archive.stderr.decode(errors='replace').strip()}")
    dest.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return [dest / p for p in BASELINE_SOURCES]


def baseline_name(ref: str) -> str:
    return f"soil-model-api@{ref}"


def baseline_cannot_serve(args: argparse.Namespace) -> str:
    return (f"bench_api: soil-model-api at {args.baseline_ref} cannot serve {args.model_dir} (see its output "
            f"above); a revision from before models were saved as skops (model.skops) cannot load such a "
            f"model: pass a later --baseline-ref or a model dir that revision can read")


def log_name(server: str) -> str:
    """A file name for a server's log: its first word, without the revision's ``@`` and ``/``."""
    return server.split()[0].replace("@", "-").replace("/", "-")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for path, hint in ((args.model_dir / "MLmodel", "run `dvc repro train` or pass --model-dir"),
                       (args.benchmark, "run `dvc repro prepare` or pass --benchmark")):
        if not path.exists():
            print(f"bench_api: {path} not found; {hint}", file=sys.stderr)
            return 2
    bands = model_bands(args.model_dir)
    spectra = load_spectra(args.benchmark, bands)
    batch = np.resize(spectra, (100, spectra.shape[1]))
    cpus = os.sched_getaffinity(0)
    server_cpus = {min(cpus)} if args.pin and len(cpus) > 1 else None

    import orjson

    estimator = load_estimator(args.model_dir)
    workdir = Path(tempfile.mkdtemp(prefix="bench-api-"))
    # Every server gets the image's BLAS setting unless --blas-threads says otherwise.
    blas = {"OPENBLAS_NUM_THREADS": str(args.blas_threads), "OMP_NUM_THREADS": str(args.blas_threads)}
    ours_port = free_port()
    servers = {
        "soil-model-api": {
            "port": ours_port, "path": "/v1/predict", "ready": "/readyz",
            "cmd": [str(VENV_BIN / "soil-model-api"), "serve"],
            "env": {"MODEL_DIR": str(args.model_dir), "MODEL_API_PORT": str(ours_port),
                    "MODEL_API_HOST": "127.0.0.1", "MODEL_URI": "", **blas},
            "body": lambda rows: orjson.dumps({"spectra": rows}, option=orjson.OPT_SERIALIZE_NUMPY),
            "parse": lambda answer: answer["predictions"],
        },
    }
    if "mlserver" in args.anchors:
        port, grpc = free_port(), free_port()
        repo = mlserver_repository(workdir, estimator, port, grpc)
        servers["MLServer"] = {
            "port": port, "path": "/v2/models/soil/infer", "ready": "/v2/models/soil/ready",
            "cmd": [str(ensure_mlserver(args.mlserver_venv)), "start", str(repo)], "env": blas,
            "body": lambda rows: orjson.dumps({"inputs": [{
                "name": "spectra", "shape": list(rows.shape), "datatype": "FP64", "data": rows.ravel()}]},
                option=orjson.OPT_SERIALIZE_NUMPY),
            "parse": lambda answer: answer["outputs"][0]["data"],
        }
    if "floor" in args.anchors:
        port = free_port()
        np.savez(workdir / "folded.npz", **fold(estimator, len(bands)))
        servers["floor (ASGI)"] = {
            "port": port, "path": "/predict", "ready": "/ping",
            "cmd": [sys.executable, str(REPO_ROOT / "bench" / "_asgi_floor.py"), str(port),
                    str(workdir / "folded.npz")], "env": blas,
            "body": lambda rows: orjson.dumps({"spectra": rows}, option=orjson.OPT_SERIALIZE_NUMPY),
            "parse": lambda answer: answer["predictions"],
        }
    if "mlflow" in args.anchors:
        port = free_port()
        servers["mlflow models serve"] = {
            "port": port, "path": "/invocations", "ready": "/ping",
            "cmd": [str(VENV_BIN / "mlflow"), "models", "serve", "-m", str(args.model_dir),
                    "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
            # mlflow starts `uvicorn` from PATH, so the venv's bin must come first.
            "env": {"MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
                    "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", **blas},
            "body": lambda rows: orjson.dumps({"dataframe_split": {"columns": bands, "data": rows}},
                                              option=orjson.OPT_SERIALIZE_NUMPY),
            "parse": lambda answer: answer["predictions"],
        }
    if args.baseline_ref:
        try:
            src = export_revision(args.baseline_ref, workdir / "baseline")
        except ValueError as exc:
            shutil.rmtree(workdir, ignore_errors=True)
            print(f"bench_api: --baseline-ref: {exc}", file=sys.stderr)
            return 2
        port = free_port()
        # `python -c` rather than the venv's script, so the exported sources on PYTHONPATH come
        # ahead of this checkout's editable installs.
        cli = "import sys; from soil_model_api.cli import main; sys.exit(main(sys.argv[1:]))"
        env = {**servers["soil-model-api"]["env"], "MODEL_API_PORT": str(port),
               "PYTHONPATH": os.pathsep.join(str(d) for d in src)}
        # The service retries a model it cannot load for ever; `check` loads it once and says why not.
        probe = subprocess.run([sys.executable, "-c", cli, "check"], env={**os.environ, **env},
                               capture_output=True, text=True, check=False)
        if probe.returncode != 0 and "invalid choice: 'check'" not in probe.stderr:
            shutil.rmtree(workdir, ignore_errors=True)
            print(f"{probe.stdout}{probe.stderr}"[-2000:], file=sys.stderr)
            print(baseline_cannot_serve(args), file=sys.stderr)
            return 2
        servers[baseline_name(args.baseline_ref)] = {
            **servers["soil-model-api"], "port": port, "cmd": [sys.executable, "-c", cli, "serve"], "env": env}
    procs: dict[str, subprocess.Popen] = {}
    results: list[Result] = []
    memory: dict[str, int] = {}
    try:
        if server_cpus:  # children inherit the affinity they are started with
            os.sched_setaffinity(0, server_cpus)
        for name, sv in servers.items():
            procs[name] = start(sv["cmd"], sv["env"], workdir / f"{log_name(name)}.log")
        if server_cpus:
            os.sched_setaffinity(0, cpus - server_cpus)
        for name, sv in servers.items():
            try:
                wait_http(f"http://127.0.0.1:{sv['port']}{sv['ready']}", procs[name])
            except (RuntimeError, TimeoutError) as exc:
                log = (workdir / f"{log_name(name)}.log").read_text()[-2000:]
                print(f"bench_api: {name} did not start: {exc}\n{log}", file=sys.stderr)
                if name == baseline_name(args.baseline_ref or ""):
                    print(baseline_cannot_serve(args), file=sys.stderr)
                return 2

        # Same model, same spectra: all servers must agree before their speed means anything.
        preds = {name: np.asarray(sv["parse"](post_json(sv["port"], sv["path"], sv["body"](spectra))),
                                  dtype=np.float64).ravel() for name, sv in servers.items()}
        diff = max(float(np.max(np.abs(p - preds["soil-model-api"]))) for p in preds.values())
        print(f"benchmark set: {len(spectra)} spectra x {len(bands)} bands; max |prediction difference| "
              f"between the servers: {diff:.3g}")
        if diff > 1e-9:
            print("bench_api: the servers disagree; not benchmarking", file=sys.stderr)
            return 1

        # (rows per request, requests, connections); the sequential run is pure latency, no queueing.
        scenarios = {"1 spectrum": (spectra[:1], args.single_requests, args.concurrency),
                     "100 spectra": (batch, args.batch_requests, args.concurrency),
                     "1 sequential": (spectra[:1], args.single_requests // 3, 1)}
        names = list(servers)
        for rep in range(args.repeat):
            for scenario, (rows, n, concurrency) in scenarios.items():
                for name in (names if rep % 2 == 0 else names[::-1]):
                    sv = servers[name]
                    raw = http_request(sv["port"], sv["path"], sv["body"](rows))
                    asyncio.run(drive(sv["port"], raw, min(50, n), concurrency, 10))  # warm-up
                    cpu_before = tree_cpu(procs[name].pid)
                    count, errors, seconds, lat = asyncio.run(drive(sv["port"], raw, n, concurrency,
                                                                    args.max_seconds))
                    cpu = tree_cpu(procs[name].pid) - cpu_before
                    results.append(Result(name, scenario, count, errors, seconds, lat, cpu))
        for name in servers:
            memory[name] = tree_rss(procs[name].pid)
    finally:
        for proc in procs.values():
            stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)

    size = image_size(args.image)
    report(results, memory, size, args)
    if args.out:
        args.out.write_text(json.dumps({
            "results": [{"server": r.server, "scenario": r.scenario, "requests": r.requests, "errors": r.errors,
                         "rps": r.rps, "p50_ms": r.pct(50), "p99_ms": r.pct(99),
                         "cpu_ms_per_request": r.cpu_ms_per_request} for r in results],
            "rss_bytes": memory, "image": args.image, "image_size_bytes": size,
            "concurrency": args.concurrency, "cpus": os.cpu_count(), "pinned": bool(server_cpus),
        }, indent=2))
    return 0 if not any(r.errors for r in results) else 1


def report(results: list[Result], memory: dict[str, int], size: int | None, args) -> None:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nconcurrency {args.concurrency}, {os.cpu_count()} CPUs"
          f"{', servers pinned to CPU 0' if args.pin else ''}; load average after the runs {load}\n")
    print(f"{'scenario':<13} {'server':<20} {'requests':>8} {'errors':>6} {'rps':>9} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'CPU ms/req':>10}")
    for r in results:
        print(f"{r.scenario:<13} {r.server:<20} {r.requests:>8} {r.errors:>6} {r.rps:>9.1f} "
              f"{r.pct(50):>8.2f} {r.pct(99):>8.2f} {r.cpu_ms_per_request:>10.2f}")
    print()
    anchors = [name for name in dict.fromkeys(r.server for r in results) if name != "soil-model-api"]
    goals = {"MLServer": 2.0, "floor (ASGI)": 0.5}
    for scenario in dict.fromkeys(r.scenario for r in results):
        ours = [r for r in results if r.server == "soil-model-api" and r.scenario == scenario]
        for anchor in anchors:
            theirs = [r for r in results if r.server == anchor and r.scenario == scenario]
            rps = [a.rps / b.rps for a, b in zip(ours, theirs, strict=True)]
            cpu = [b.cpu_ms_per_request / a.cpu_ms_per_request for a, b in zip(ours, theirs, strict=True)]
            goal = goals.get(anchor) if scenario.startswith("1 spectrum") else None
            verdict = "" if goal is None else f"  goal >= {goal}: {'met' if np.median(rps) >= goal else 'NOT met'}"
            if args.baseline_ref and anchor == baseline_name(args.baseline_ref):
                # Before and after the change: latency and CPU per request may grow by 20% at most.
                p50 = [a.pct(50) / b.pct(50) for a, b in zip(ours, theirs, strict=True)]
                within = np.median(p50) <= 1.2 and np.median(cpu) >= 1 / 1.2
                verdict = (f", p50 ours / theirs {spread(p50)}  within 20% (median p50 and CPU): "
                           f"{'yes' if within else 'NO'}")
            print(f"{scenario:<13} soil-model-api / {anchor}: throughput {spread(rps)} (min/median/max over "
                  f"{len(rps)}), their CPU per request / ours {spread(cpu)}{verdict}")
    print()
    for name, rss in memory.items():
        print(f"resident memory after the runs, {name}: {rss / 2**20:.0f} MiB")
    if size is None:
        print(f"image {args.image}: not found (build it with `soilci build model-api`)")
    else:
        print(f"image {args.image}: {size / 1e6:.0f} MB (goal < 600 MB: {'met' if size < 600e6 else 'NOT met'})")


if __name__ == "__main__":
    sys.exit(main())
