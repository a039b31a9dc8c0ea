"""Time the drift gate against Evidently's data-drift preset on the same inputs, in the same run.

    .venv/bin/python bench/bench_drift.py [--large-rows 50000] [--shift none|offset|gain|wavelength]

Cases: the default dataset (data/reference.parquet vs data/incoming.parquet, made by the prepare
stage when missing) and a large case of ``--large-rows`` rows x 830 bands in each file, resampled
from SSP.460's reference set with a little noise (same source for both files, so "no drift" is the
right answer unless ``--shift`` applies an instrument change to both candidates). Evidently runs in its own virtual environment
(``--evidently-venv``, created with uv on first use) because it does not install beside pandas 3.
Gate times: in-process (read + validate + all tests, best of ``--repeat``) and the console script
end to end (interpreter start, imports, JSON and PNG written), with its peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
EVIDENTLY_VENV = Path("/var/tmp/soilci-bench-evidently")
EVIDENTLY_REQUIREMENTS = ["evidently", "pandas<3", "pyarrow"]


def ensure_evidently(venv: Path) -> Path:
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import evidently"]
    if python.exists() and subprocess.run(probe, capture_output=True, check=False).returncode == 0:
        return python
    print(f"installing Evidently into {venv} ...", flush=True)
    subprocess.run(["uv", "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    subprocess.run(["uv", "pip", "install", "-q", "--python", str(python), *EVIDENTLY_REQUIREMENTS], check=True)
    return python


# A small launcher starts the measured command: a child's peak-RSS record starts from the memory
# of the process that spawned it, and this benchmark's own process holds the large inputs.
LAUNCHER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[2:]).returncode\n"
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
    "sys.exit(code)\n"
)


# Children keep compiled bytecode (outside the repo) even where PYTHONDONTWRITEBYTECODE is set, so the
# CLI is timed as an installed program runs (the image compiles its bytecode at build time), not
# recompiling pandas, scipy and matplotlib on every start.
PYCACHE = Path("/var/tmp/soilci-bench-pycache")


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


def run_measured(cmd: list[str]) -> tuple[float, float, str, int]:
    """Wall seconds, peak RSS (MiB), stdout and exit code of a child process."""
    with tempfile.TemporaryDirectory() as tmp:
        rss_file = Path(tmp) / "rss"
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", LAUNCHER, str(rss_file), *cmd], env=child_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=False)
        wall = time.perf_counter() - start
        rss_kib = float(rss_file.read_text()) if rss_file.exists() else float("nan")
    return wall, rss_kib / 1024, proc.stdout, proc.returncode


def default_case(workdir: Path) -> tuple[Path, Path]:
    ref, inc = REPO / "data" / "reference.parquet", REPO / "data" / "incoming.parquet"
    if ref.exists() and inc.exists():
        return ref, inc
    out = workdir / "data"
    subprocess.run([str(VENV_BIN / "soil-trainer"), "prepare", "--params", str(REPO / "params.yaml"),
                    "--out-dir", str(out)], check=True)
    return out / "reference.parquet", out / "incoming.parquet"


def shifted(frame: pd.DataFrame, shift: str) -> pd.DataFrame:
    if shift == "none":
        return frame
    bands = [c for c in frame.columns if c.startswith(("wl_", "wn_"))]
    x = frame[bands].to_numpy()
    if shift == "offset":
        x = x + 0.01 * x.mean()
    elif shift == "gain":
        x = x * 1.05
    elif shift == "wavelength":
        x = np.concatenate([x[:, :1], x[:, :-1]], axis=1)
    out = frame.copy()
    out[bands] = x
    return out


def large_case(source: Path, rows: int, workdir: Path, shift: str) -> tuple[Path, Path]:
    pool = pd.read_parquet(source)
    bands = [c for c in pool.columns if c.startswith(("wl_", "wn_"))]
    noise = 0.001 * pool[bands].to_numpy().std(0)
    paths = []
    for name, seed in (("reference", 1), ("candidate", 2)):
        rng = np.random.default_rng(seed)
        frame = pool.iloc[rng.integers(0, len(pool), rows)].reset_index(drop=True)
        frame[bands] = frame[bands].to_numpy() + rng.normal(0, 1, (rows, len(bands))) * noise
        frame["sample_id"] = [f"{name}:{i}" for i in range(rows)]
        if name == "candidate":
            frame = shifted(frame, shift)
        path = workdir / f"large_{name}.parquet"
        frame.to_parquet(path, index=False)
        paths.append(path)
    return paths[0], paths[1]


def gate_in_process(ref: Path, cand: Path, repeat: int):
    """Best wall time of read + validate + every test, and the verdict."""
    from soil_drift.config import load_params
    from soil_drift.gate import check_drift
    from soil_drift.inputs import load_inputs

    params = load_params(REPO / "params.yaml")
    best, verdict = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        verdict = check_drift(load_inputs(ref, cand, params), params)
        best = min(best, time.perf_counter() - start)
    return best, verdict


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large-rows", type=int, default=50_000)
    parser.add_argument("--shift", choices=["none", "offset", "gain", "wavelength"], default="none",
                        help="instrument change applied to the candidate of both cases")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--evidently-venv", type=Path, default=EVIDENTLY_VENV)
    parser.add_argument("--skip-evidently", action="store_true")
    args = parser.parse_args(argv)

    evidently = None if args.skip_evidently else ensure_evidently(args.evidently_venv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-drift-") as tmp:
        workdir = Path(tmp)
        ref, inc = default_case(workdir)
        if args.shift != "none":
            inc_shifted = workdir / "incoming_shifted.parquet"
            shifted(pd.read_parquet(inc), args.shift).to_parquet(inc_shifted, index=False)
            inc = inc_shifted
        cases = {"default": (ref, inc)}
        if args.large_rows:
            cases[f"{args.large_rows} x 830"] = large_case(ref, args.large_rows, workdir, args.shift)
        warm = [str(VENV_BIN / "soil-drift"), "check", str(ref), str(inc), "--params", str(REPO / "params.yaml"),
                "--out", str(workdir / "warm.json"), "--plot", str(workdir / "warm.png")]
        run_measured(warm)  # fills the bytecode cache; not timed
        for label, (r, c) in cases.items():
            n_ref, n_cand = (len(pd.read_parquet(p, columns=["sample_id"])) for p in (r, c))
            seconds, verdict = gate_in_process(r, c, args.repeat)
            cli = [str(VENV_BIN / "soil-drift"), "check", str(r), str(c), "--params", str(REPO / "params.yaml"),
                   "--out", str(workdir / f"{label}.json"), "--plot", str(workdir / f"{label}.png")]
            cli_wall, cli_rss, _, cli_rc = run_measured(cli)
            row = {"case": label, "rows": f"{n_ref} vs {n_cand}", "gate_s": seconds, "gate_cli_s": cli_wall,
                   "gate_rss_mib": cli_rss, "gate_verdict": verdict.status, "gate_exit": cli_rc,
                   "gate_tests": f"{len(verdict.drifted_tests)}/{len(verdict.tests)} drifted"}
            print(f"[{label}] gate: {seconds:.2f} s in-process, {cli_wall:.2f} s CLI, "
                  f"peak RSS {cli_rss:.0f} MiB, {verdict.status} ({row['gate_tests']})", flush=True)
            if evidently is not None:
                _, rss, text, rc = run_measured([str(evidently), str(REPO / "bench" / "_evidently_check.py"),
                                                    str(r), str(c)])
                if rc != 0:
                    raise SystemExit(f"Evidently failed on {label} (exit {rc})")
                result = json.loads(text.strip().splitlines()[-1])
                row.update(evidently_s=result["seconds"], evidently_rss_mib=rss,
                           evidently_verdict=("drift" if result["drift"] else "no drift")
                           + f" ({result['drifted_columns']} of {n_cols(r)} columns drifted)",
                           ratio=result["seconds"] / seconds, ratio_cli=result["seconds"] / cli_wall)
                print(f"[{label}] Evidently: {result['seconds']:.1f} s in Report.run, peak RSS {rss:.0f} MiB, "
                      f"{row['evidently_verdict']}", flush=True)
            rows.append(row)

    print("\nsummary")
    for row in rows:
        line = (f"  {row['case']:>12s} ({row['rows']}): gate {row['gate_s']:.2f} s "
                f"(CLI {row['gate_cli_s']:.2f} s, {row['gate_rss_mib']:.0f} MiB) -> {row['gate_verdict']}")
        if "ratio" in row:
            line += (f" | Evidently {row['evidently_s']:.1f} s ({row['evidently_rss_mib']:.0f} MiB) -> "
                     f"{row['evidently_verdict']} | Evidently/gate: {row['ratio']:.0f}x in-process, "
                     f"{row['ratio_cli']:.0f}x vs the CLI")
        print(line)
    return 0


def n_cols(path: Path) -> int:
    import pyarrow.parquet as pq

    return len([c for c in pq.read_schema(path).names if c != "sample_id"])


if __name__ == "__main__":
    sys.exit(main())
