"""Load benchmark: soil-model-api against `mlflow models serve` of the same model, side by side.

    .venv/bin/python bench/bench_api.py [--model-dir models/model] [--benchmark data/benchmark.parquet]

Starts both servers on loopback ports (one worker each), drives them with the same bounded load
(single-spectrum and 100-spectrum requests, keep-alive connections, a fixed number of requests per
scenario), checks both return the same predictions, and prints requests per second, p50/p99
latency, the ratios, the resident memory of each server and the size of the model-api image.
The load generator writes pre-encoded HTTP/1.1 requests on raw asyncio sockets, so the client costs
far less CPU than the servers it measures on the same two cores.

``--baseline-ref main`` also serves the model with soil-model-api as it is at that git revision (its
``libs/contracts`` and ``services/model-api`` sources exported to a temp dir, run with this venv), so
a change is measured against its own before in the same run; ``--rounds N`` repeats every scenario N
times, alternating which server goes first, and ``--no-mlflow`` leaves mlflow out.
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
    p.add_argument("--baseline-ref", help="also serve soil-model-api from this git revision (e.g. main)")
    p.add_argument("--rounds", type=int, default=1, help="repeat the scenarios, alternating the server order")
    p.add_argument("--no-mlflow", action="store_true", help="leave `mlflow models serve` out")
    return p.parse_args(argv)


def export_revision(ref: str, dest: Path) -> list[Path]:
    """The model API's and the contracts' sources at ``ref`` under ``dest``; returns their ``src`` dirs."""
    paths = ["libs/contracts/src", "services/model-api/src"]
    archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", "--format=tar", ref, *paths],
                             capture_output=True, check=True).stdout
    dest.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return [dest / p for p in paths]


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

    ours_port, mlflow_port = free_port(), free_port()
    # Both servers get the image's BLAS setting unless --blas-threads says otherwise.
    blas = {"OPENBLAS_NUM_THREADS": str(args.blas_threads), "OMP_NUM_THREADS": str(args.blas_threads)}
    workdir = Path(tempfile.mkdtemp(prefix="bench-api-"))
    servers = {
        "soil-model-api": {
            "port": ours_port, "path": "/v1/predict", "ready": "/readyz",
            "cmd": [str(VENV_BIN / "soil-model-api"), "serve"],
            "env": {"MODEL_DIR": str(args.model_dir), "MODEL_API_PORT": str(ours_port),
                    "MODEL_API_HOST": "127.0.0.1", "MODEL_URI": "", **blas},
            "body": lambda rows: orjson.dumps({"spectra": rows}, option=orjson.OPT_SERIALIZE_NUMPY),
        },
        "mlflow models serve": {
            "port": mlflow_port, "path": "/invocations", "ready": "/ping",
            "cmd": [str(VENV_BIN / "mlflow"), "models", "serve", "-m", str(args.model_dir),
                    "--env-manager", "local", "-h", "127.0.0.1", "-p", str(mlflow_port), "-w", "1"],
            # mlflow starts `uvicorn` from PATH, so the venv's bin must come first.
            "env": {"MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
                    "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", **blas},
            "body": lambda rows: orjson.dumps({"dataframe_split": {"columns": bands, "data": rows}},
                                              option=orjson.OPT_SERIALIZE_NUMPY),
        },
    }
    if args.no_mlflow:
        del servers["mlflow models serve"]
    if args.baseline_ref:
        port = free_port()
        src = export_revision(args.baseline_ref, workdir / "baseline")
        servers[baseline_name(args)] = {
            **servers["soil-model-api"], "port": port,
            # The exported sources come first on sys.path, ahead of this checkout's editable installs.
            "cmd": [sys.executable, "-c", "import sys; from soil_model_api.cli import main; sys.exit(main(['serve']))"],
            "env": {**servers["soil-model-api"]["env"], "MODEL_API_PORT": str(port),
                    "PYTHONPATH": os.pathsep.join(str(s) for s in src)},
        }
    procs: dict[str, subprocess.Popen] = {}
    results: list[Result] = []
    memory: dict[str, int] = {}
    try:
        if server_cpus:  # children inherit the affinity they are started with
            os.sched_setaffinity(0, server_cpus)
        for name, s in servers.items():
            procs[name] = start(s["cmd"], s["env"], workdir / f"{log_name(name)}.log")
        if server_cpus:
            os.sched_setaffinity(0, cpus - server_cpus)
        for name, s in servers.items():
            try:
                wait_http(f"http://127.0.0.1:{s['port']}{s['ready']}", procs[name])
            except (RuntimeError, TimeoutError) as exc:
                log = (workdir / f"{log_name(name)}.log").read_text()[-2000:]
                print(f"bench_api: {name} did not start: {exc}\n{log}", file=sys.stderr)
                return 2

        # Same model, same spectra: both servers must agree before their speed means anything.
        preds = {name: np.asarray(post_json(s["port"], s["path"], s["body"](spectra))["predictions"],
                                  dtype=np.float64).ravel() for name, s in servers.items()}
        diff = max(float(np.max(np.abs(preds["soil-model-api"] - other))) for other in preds.values())
        print(f"benchmark set: {len(spectra)} spectra x {len(bands)} bands; max |prediction difference| "
              f"between the servers: {diff:.3g}")
        if diff > 1e-9:
            print("bench_api: the servers disagree; not benchmarking", file=sys.stderr)
            return 1

        # (rows per request, requests, connections); the sequential run is pure latency, no queueing.
        scenarios = {"1 spectrum": (spectra[:1], args.single_requests, args.concurrency),
                     "100 spectra": (batch, args.batch_requests, args.concurrency),
                     "1 sequential": (spectra[:1], args.single_requests // 3, 1)}
        for round_ in range(args.rounds):
            order = list(servers) if round_ % 2 == 0 else list(servers)[::-1]
            for scenario, (rows, n, concurrency) in scenarios.items():
                for name in order:
                    s = servers[name]
                    raw = http_request(s["port"], s["path"], s["body"](rows))
                    asyncio.run(drive(s["port"], raw, min(50, n), concurrency, 10))  # warm-up
                    cpu_before = tree_cpu(procs[name].pid)
                    count, errors, seconds, lat = asyncio.run(drive(s["port"], raw, n, concurrency, args.max_seconds))
                    cpu = tree_cpu(procs[name].pid) - cpu_before
                    results.append(Result(name, scenario, count, errors, seconds, lat, cpu))
        results = merge_rounds(results)
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


def baseline_name(args) -> str:
    return f"soil-model-api@{args.baseline_ref}"


def log_name(server: str) -> str:
    return server.split()[0].replace("@", "-").replace("/", "-")


def merge_rounds(results: list[Result]) -> list[Result]:
    """One Result per (server, scenario): requests, errors, time, latencies and CPU summed over the rounds."""
    merged: dict[tuple[str, str], Result] = {}
    for r in results:
        m = merged.get((r.server, r.scenario))
        merged[(r.server, r.scenario)] = r if m is None else Result(
            r.server, r.scenario, m.requests + r.requests, m.errors + r.errors, m.seconds + r.seconds,
            np.concatenate([m.latencies, r.latencies]), m.cpu_seconds + r.cpu_seconds)
    return list(merged.values())


def report_baseline(by: dict[tuple[str, str], Result], args) -> None:
    """This checkout against ``--baseline-ref``, same run: latency and CPU ratios (goal: within 20%)."""
    base = baseline_name(args)
    for scenario in ("1 spectrum", "1 sequential", "100 spectra"):
        ours, before = by.get(("soil-model-api", scenario)), by.get((base, scenario))
        if ours is None or before is None:
            continue
        p50, p99 = ours.pct(50) / before.pct(50), ours.pct(99) / before.pct(99)
        cpu = ours.cpu_ms_per_request / before.cpu_ms_per_request
        verdict = "within 20%" if max(p50, cpu) <= 1.2 else "NOT within 20%"
        print(f"{scenario:<13} this checkout vs {args.baseline_ref}: p50 x{p50:.3f}, p99 x{p99:.3f}, "
              f"CPU per request x{cpu:.3f} ({verdict}: p50 and CPU)")


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
    by = {(r.server, r.scenario): r for r in results}
    if args.baseline_ref:
        report_baseline(by, args)
    for scenario in dict.fromkeys(r.scenario for r in results):
        if ("mlflow models serve", scenario) not in by:
            continue
        ours, theirs = by[("soil-model-api", scenario)], by[("mlflow models serve", scenario)]
        print(f"{scenario:<13} soil-model-api vs mlflow: throughput x{ours.rps / theirs.rps:.2f}, "
              f"p50 x{theirs.pct(50) / ours.pct(50):.2f} lower, p99 x{theirs.pct(99) / ours.pct(99):.2f} lower, "
              f"CPU per request x{theirs.cpu_ms_per_request / ours.cpu_ms_per_request:.2f} lower")
    single, seq = by.get(("soil-model-api", "1 spectrum")), by.get(("soil-model-api", "1 sequential"))
    if single and seq and ("mlflow models serve", "1 spectrum") in by:
        ratio = single.rps / by[("mlflow models serve", "1 spectrum")].rps
        print(f"goals (1 spectrum): throughput >= 3x mlflow: {'met' if ratio >= 3 else 'NOT met'} (x{ratio:.2f}); "
              f"p99 < 20 ms: {'met' if single.pct(99) < 20 else 'NOT met'} ({single.pct(99):.2f} ms with "
              f"{args.concurrency} connections, {seq.pct(99):.2f} ms sequential)")
    print()
    for name, rss in memory.items():
        print(f"resident memory after the runs, {name}: {rss / 2**20:.0f} MiB")
    if size is None:
        print(f"image {args.image}: not found (build it with `soilci build model-api`)")
    else:
        print(f"image {args.image}: {size / 1e6:.0f} MB (goal < 600 MB: {'met' if size < 600e6 else 'NOT met'})")


if __name__ == "__main__":
    sys.exit(main())
