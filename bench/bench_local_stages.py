"""Cold `soilci pipeline --local`: stages forked from the preloaded interpreter against the anchor, sh -c.

Usage: .venv/bin/python bench/bench_local_stages.py [--repeat N]

Each repetition runs a fresh copy of the project (git repo, empty DVC cache and run-cache, an empty local
DVC remote) twice, once with SOILCI_LOCAL_PRELOAD=0 (the anchor: each stage a fresh Python under sh -c)
and once with the default (each stage forked from one interpreter that imported the stages' libraries),
alternating which goes first. CPU is the machine's busy time from /proc/stat over the run, so the
forkserver and its stages count, and so does anything else running: use an otherwise idle machine.
Prints min / median / max of wall time and CPU, and the ratios of the medians.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))

from tests.support import copy_project, set_dvc_config


def busy_seconds() -> float:
    """CPU time the machine spent busy since boot (all cores; /proc/stat's first line, USER_HZ = 100)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / 100


def fresh_project(work: Path, name: str) -> Path:
    project = copy_project(work / name)
    set_dvc_config(project, remote=work / f"{name}-remote", default=True)
    for cmd in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"],
                ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "bench"]):
        subprocess.run(cmd, cwd=project, check=True, capture_output=True)
    return project


def cold_run(project: Path, preload: str) -> tuple[float, float]:
    """Wall seconds and machine CPU-seconds of one cold ``soilci pipeline --local``; exits on failure."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")} | {"SOILCI_LOCAL_PRELOAD": preload}
    cpu, started = busy_seconds(), time.perf_counter()
    proc = subprocess.run([str(BIN / "soilci"), "pipeline", "--local", "--repo", str(project)], cwd=project,
                          env=env, capture_output=True, text=True, check=False)
    wall, cpu = time.perf_counter() - started, busy_seconds() - cpu
    if proc.returncode != 0:
        sys.exit(f"SOILCI_LOCAL_PRELOAD={preload}: soilci pipeline --local exited {proc.returncode}\n{proc.stderr}")
    return wall, cpu


def spread(values: list[float]) -> str:
    return f"{min(values):6.1f} {statistics.median(values):6.1f} {max(values):6.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of each (default 3)")
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float]]] = {"0": [], "1": []}
    work = Path(tempfile.mkdtemp(prefix="soilci-bench-local-"))
    try:
        for i in range(args.repeat):
            for preload in ("0", "1") if i % 2 == 0 else ("1", "0"):
                project = fresh_project(work, f"p{i}-{preload}")
                results[preload].append(cold_run(project, preload))
                print(f"run {i + 1}, SOILCI_LOCAL_PRELOAD={preload}: {results[preload][-1][0]:.1f} s, "
                      f"{results[preload][-1][1]:.1f} CPU-s", file=sys.stderr)
                shutil.rmtree(project, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"cold soilci pipeline --local, {args.repeat} runs each   min / median / max")
    for preload, label in (("0", "sh -c (anchor)"), ("1", "forked, preloaded")):
        walls, cpus = [w for w, _ in results[preload]], [c for _, c in results[preload]]
        print(f"  {label:18s} wall s {spread(walls)}   CPU-s {spread(cpus)}")
    ratio = {k: statistics.median(x[k] for x in results["1"]) / statistics.median(x[k] for x in results["0"])
             for k in (0, 1)}
    print(f"  forked / sh -c     wall {ratio[0]:.2f}   CPU {ratio[1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
