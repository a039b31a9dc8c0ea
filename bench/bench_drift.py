"""Time the drift gate against alibi-detect's KSDrift and MMDDrift (default) or Evidently's preset, in the same run.

    .venv/bin/python bench/bench_drift.py [--anchor alibi|evidently] [--bands 430 830] [--detectors ks mmd]
                                          [--shift none|offset|gain|wavelength]

``--anchor alibi`` (default): the gate's console script and whole alibi-detect processes
(bench/_alibi_check.py: KSDrift from a numpy-only venv, MMDDrift from a TensorFlow-CPU venv, both made
with uv on first use) run on the same files, alternating the order, ``--repeat`` times per case, on
the machine as it is ("quiet") and again while CPU-burner processes (one per available core) keep
every core busy ("busy"). Printed per case and condition: min/median/max wall time of each, the
per-repetition ratios anchor / gate (> 1: the gate is faster), peak RSS, verdicts and the load
average. MMDDrift runs are stopped after ``--mmd-timeout`` seconds ("did not finish within N s").
Cases, per band count of ``--bands``: 430 = the library's canonical grid (data/reference.parquet vs
data/incoming.parquet, or the first 46 benchmark rows when incoming is empty); 830 = the same samples
with SSP.460's native 830 bands from LimeSoDa; then ``--sizes`` rows a side resampled from that
reference with 0.1% noise (default 5,000 and 50,000).

``--anchor evidently``: the default dataset (data/reference.parquet vs data/incoming.parquet, made by the prepare
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
ALIBI_VENV = Path("/var/tmp/soilci-bench/alibi")
# alibi-detect 0.13 pins numpy < 2, and pyarrow 18+ needs numpy 2. KSDrift is numpy + scipy: its venv
# has no deep-learning backend, so importing alibi_detect.cd does not pull one in.
ALIBI_REQUIREMENTS = ["alibi-detect==0.13.0", "pyarrow<18"]
# MMDDrift needs PyTorch or TensorFlow. PyPI's Linux torch wheels bring the CUDA libraries; tensorflow-cpu
# is the smallest backend there (about 2 GiB installed). tf-keras (which TensorFlow Probability needs
# with Keras 3) requires the "tensorflow" distribution, which tensorflow-cpu replaces: the override
# drops that requirement, so the GPU build is never downloaded.
ALIBI_TF_VENV = Path("/var/tmp/soilci-bench/alibi-tf")
ALIBI_TF_REQUIREMENTS = ["alibi-detect==0.13.0", "tensorflow-cpu==2.18.1", "tensorflow-probability==0.25.0",
                         "tf-keras==2.18.0", "pyarrow<18"]
ALIBI_TF_OVERRIDES = ['tensorflow; sys_platform == "never"']


def ensure_venv(venv: Path, module: str, requirements: list[str], overrides: list[str] | None = None) -> Path:
    """The venv's python, created with uv and ``requirements`` from PyPI unless ``module`` imports already.

    ``overrides``: uv override lines (``uv pip install --override``), e.g. to drop a requirement.
    """
    python = venv / "bin" / "python"
    probe = [str(python), "-c", f"import {module}"]
    if python.exists() and subprocess.run(probe, capture_output=True, check=False).returncode == 0:
        return python
    print(f"installing {' '.join(requirements)} into {venv} ...", flush=True)
    subprocess.run(["uv", "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        extra = []
        if overrides:
            (Path(tmp) / "overrides.txt").write_text("\n".join(overrides) + "\n")
            extra = ["--override", str(Path(tmp) / "overrides.txt")]
        subprocess.run(["uv", "pip", "install", "-q", "--python", str(python), *extra, *requirements], check=True)
    return python


def ensure_evidently(venv: Path) -> Path:
    return ensure_venv(venv, "evidently", EVIDENTLY_REQUIREMENTS)


# A small launcher starts the measured command: a child's peak-RSS record starts from the memory
# of the process that spawned it, and this benchmark's own process holds the large inputs.
# With a timeout (seconds, 0 = none) the child is killed when it runs out, and the exit code is 124.
LAUNCHER = (
    "import resource, subprocess, sys\n"
    "try:\n"
    "    code = subprocess.run(sys.argv[3:], timeout=float(sys.argv[2]) or None).returncode\n"
    "except subprocess.TimeoutExpired:\n"
    "    code = 124\n"
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
    "sys.exit(code)\n"
)
TIMED_OUT = 124


# Children keep compiled bytecode (outside the repo) even where PYTHONDONTWRITEBYTECODE is set, so the
# CLI is timed as an installed program runs (the image compiles its bytecode at build time), not
# recompiling pandas, scipy and matplotlib on every start.
PYCACHE = Path("/var/tmp/soilci-bench-pycache")


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


def run_measured(cmd: list[str], timeout: float = 0) -> tuple[float, float, str, int]:
    """Wall seconds, peak RSS (MiB), stdout and exit code of a child process (TIMED_OUT after ``timeout`` s)."""
    with tempfile.TemporaryDirectory() as tmp:
        rss_file = Path(tmp) / "rss"
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", LAUNCHER, str(rss_file), str(timeout), *cmd], env=child_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=False)
        wall = time.perf_counter() - start
        rss_kib = float(rss_file.read_text()) if rss_file.exists() else float("nan")
    return wall, rss_kib / 1024, proc.stdout, proc.returncode


def default_case(workdir: Path) -> tuple[Path, Path]:
    """data/reference.parquet and data/incoming.parquet (``soilci pipeline --local`` makes them).

    When incoming holds no rows (no new library batch), the candidate is the first 46 rows of
    data/benchmark.parquet: held-out samples of the same source, the size of prepare's default split.
    """
    ref, inc = REPO / "data" / "reference.parquet", REPO / "data" / "incoming.parquet"
    if not ref.exists():
        raise SystemExit("data/reference.parquet is missing: run 'soilci library demo && soilci pipeline --local'")
    if inc.exists() and len(pd.read_parquet(inc, columns=["sample_id"])):
        return ref, inc
    cand = workdir / "incoming46.parquet"
    pd.read_parquet(REPO / "data" / "benchmark.parquet").head(46).to_parquet(cand, index=False)
    return ref, cand


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


def available_cpus() -> int:
    from soil_drift.threads import available_cpus as cpus

    return cpus()


def start_burners(n: int) -> list[subprocess.Popen]:
    """``n`` processes that each keep one core busy (pure-Python spin), until stopped."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def stop(processes: list[subprocess.Popen]) -> None:
    for proc in processes:
        proc.terminate()
    for proc in processes:
        proc.wait(timeout=30)


def spread(values: list[float], fmt: str = "{:.2f}") -> str:
    """min / median / max of a few repetitions."""
    return "/".join(fmt.format(v) for v in (min(values), float(np.median(values)), max(values)))


def default_pair(workdir: Path, shift: str) -> tuple[Path, Path]:
    """The default reference and incoming files in ``workdir``, the incoming one shifted unless ``shift`` is none."""
    ref, inc = default_case(workdir)
    if shift == "none":
        return ref, inc
    inc_shifted = workdir / "incoming_shifted.parquet"
    shifted(pd.read_parquet(inc), shift).to_parquet(inc_shifted, index=False)
    return ref, inc_shifted


def native_pair(ref: Path, cand: Path, workdir: Path) -> tuple[Path, Path]:
    """The same samples as ``ref`` and ``cand`` (sample_id ``SSP.460:<row>``) with SSP.460's native 830 bands.

    The library resamples every batch to its 430-band grid; LimeSoDa's SSP.460 has 830 bands
    (wl_350..wl_2498, uneven steps), the size issue #17 names. sample_id, SOC_target, then the bands.
    """
    import re

    from LimeSoDa import load_dataset

    data = load_dataset("SSP.460")["Dataset"]
    bands = [c for c in data.columns if re.match(r"^wl_\d+(\.\d+)?$", str(c))]
    paths = []
    for path, name in ((ref, "reference830"), (cand, "candidate830")):
        ids = pd.read_parquet(path, columns=["sample_id"])["sample_id"].tolist()
        if not all(i.startswith("SSP.460:") for i in ids):
            raise SystemExit(f"{path}: the 830-band case needs SSP.460 samples (sample_id SSP.460:<row>)")
        rows = [int(i.split(":")[1]) for i in ids]
        frame = pd.DataFrame({"sample_id": ids, "SOC_target": data["SOC_target"].to_numpy(float)[rows]})
        frame = pd.concat([frame, data[bands].iloc[rows].reset_index(drop=True).astype(float)], axis=1)
        out = workdir / f"{name}.parquet"
        frame.to_parquet(out, index=False)
        paths.append(out)
    return paths[0], paths[1]


def build_cases(workdir: Path, args: argparse.Namespace) -> dict[str, tuple[Path, Path]]:
    """Label -> (reference, candidate) files: per band count the default-sized pair, then ``--sizes`` a side."""
    ref, inc = default_case(workdir)
    cases = {}
    for n_bands in args.bands:
        grid_dir = workdir / f"b{n_bands}"
        grid_dir.mkdir()
        small = (ref, inc) if n_bands == 430 else native_pair(ref, inc, grid_dir)
        if args.shift != "none":
            shifted_path = grid_dir / "candidate_shifted.parquet"
            shifted(pd.read_parquet(small[1]), args.shift).to_parquet(shifted_path, index=False)
            small = (small[0], shifted_path)
        pairs = [small]
        for n in args.sizes:
            case_dir = grid_dir / f"r{n}"
            case_dir.mkdir()
            pairs.append(large_case(small[0], n, case_dir, args.shift))
        for r, c in pairs:
            n_ref, n_cand = (pq_rows(p) for p in (r, c))
            found = sum(name.startswith(("wl_", "wn_")) for name in pq_names(r))
            if found != n_bands:
                raise SystemExit(f"{r}: {found} bands, expected {n_bands} (params.yaml library.grid changed?)")
            cases[f"{n_ref:,}x{n_cand:,}x{n_bands}"] = (r, c)
    return cases


def pq_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.read_metadata(path).num_rows


def anchor_result(name: str, out: str, rc: int, timeout: float) -> tuple[str | None, str]:
    """(verdict, None) of a finished anchor run, or (None, why it has no time)."""
    if rc == TIMED_OUT:
        return None, f"did not finish within {timeout:.0f} s"
    lines = out.strip().splitlines()
    result = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    if "skipped" in result:
        return None, f"not run: {result['skipped']}"
    if rc != 0 or "drift" not in result:
        raise SystemExit(f"alibi-detect {name} failed (exit {rc}): {out[-500:]}")
    verdict = "drift" if result["drift"] else "no drift"
    if "drifted_bands" in result:
        return verdict + f" ({result['drifted_bands']}/{result['bands']} bands)", ""
    return verdict + f" (p {result['p_val']:.2f})", ""


def alibi_side_by_side(args: argparse.Namespace) -> int:
    """The gate's CLI and alibi-detect's detectors, whole processes, alternating, quiet and under contention."""
    started = time.perf_counter()
    anchors = {"ks": ensure_venv(args.alibi_venv, "alibi_detect", ALIBI_REQUIREMENTS)}
    if "mmd" in args.detectors:
        anchors["mmd"] = ensure_venv(args.alibi_tf_venv, "tensorflow", ALIBI_TF_REQUIREMENTS, ALIBI_TF_OVERRIDES)
    anchors = {k: v for k, v in anchors.items() if k in args.detectors}
    titles = {"ks": "KSDrift", "mmd": "MMDDrift"}
    timeouts = {"gate": 0.0, "ks": 0.0, "mmd": args.mmd_timeout}
    print(f"gate threads: SOIL_DRIFT_THREADS={os.environ.get('SOIL_DRIFT_THREADS', '(unset: 1)')}; "
          f"available CPUs {available_cpus()}; uptime: {uptime()}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-drift-") as tmp:
        workdir = Path(tmp)
        commands: dict[str, dict[str, list[str]]] = {}
        for label, (r, c) in build_cases(workdir, args).items():
            commands[label] = {"gate": [str(VENV_BIN / "soil-drift"), "check", str(r), str(c), "--params",
                                        str(REPO / "params.yaml"), "--out", str(workdir / "gate.json")]}
            for name, python in anchors.items():
                commands[label][name] = [str(python), str(REPO / "bench" / "_alibi_check.py"), str(r), str(c),
                                         "--detector", name]
        for name, cmd in next(iter(commands.values())).items():  # fill the bytecode caches; not timed
            run_measured(cmd)
        conditions = ["quiet"] + ([] if args.no_contention else ["busy"])
        for condition in conditions:
            burners = start_burners(available_cpus()) if condition == "busy" else []
            mmd_gave_up: tuple[int, int] | None = None  # (rows, bands) of the first case MMDDrift did not finish
            try:
                time.sleep(1 if burners else 0)
                print(f"[{condition}] uptime at start: {uptime()}", flush=True)
                for label, cmds in commands.items():
                    n_ref, n_cand, n_bands = (int(v.replace(",", "")) for v in label.split("x"))
                    times: dict[str, list[float]] = {name: [] for name in cmds}
                    rss: dict[str, list[float]] = {name: [] for name in cmds}
                    verdicts: dict[str, str] = {}
                    missing: dict[str, str] = {}
                    if "mmd" in cmds and mmd_gave_up and n_ref + n_cand >= mmd_gave_up[0] and n_bands >= mmd_gave_up[1]:
                        missing["mmd"] = (f"not run: did not finish within {args.mmd_timeout:.0f} s at "
                                          f"{mmd_gave_up[0]:,} rows x {mmd_gave_up[1]} bands")
                    for rep in range(args.repeat):
                        order = list(cmds) if rep % 2 == 0 else list(cmds)[::-1]
                        for name in order:
                            if name in missing:
                                continue
                            wall, peak, out, rc = run_measured(cmds[name], timeouts[name])
                            if name == "gate":
                                if rc not in (0, 1):
                                    raise SystemExit(f"gate failed on {label} (exit {rc})")
                                verdicts[name] = "drift" if rc == 1 else "no drift"
                            else:
                                verdict, why = anchor_result(name, out, rc, timeouts[name])
                                if verdict is None:
                                    missing[name] = why
                                    times[name], rss[name] = [], []
                                    if name == "mmd":
                                        mmd_gave_up = (n_ref + n_cand, n_bands)
                                    continue
                                verdicts[name] = verdict
                            times[name].append(wall)
                            rss[name].append(peak)
                    row = {"condition": condition, "case": label, "gate_s": times["gate"],
                           "gate_rss_mib": max(rss["gate"]), "verdicts": verdicts, "missing": missing}
                    parts = [f"gate {spread(times['gate'])} s ({row['gate_rss_mib']:.0f} MiB, {verdicts['gate']})"]
                    for name in anchors:
                        if name in missing:
                            row[name] = None
                            parts.append(f"{titles[name]} {missing[name]}")
                            continue
                        ratios = [a / g for a, g in zip(times[name], times["gate"], strict=True)]
                        row[name] = {"s": times[name], "rss_mib": max(rss[name]), "ratio": ratios}
                        parts.append(f"{titles[name]} {spread(times[name])} s ({max(rss[name]):.0f} MiB, "
                                     f"{verdicts[name]}), /gate {spread(ratios)}")
                    rows.append(row)
                    print(f"[{condition}] {label}: " + " | ".join(parts), flush=True)
                print(f"[{condition}] uptime at end: {uptime()}", flush=True)
            finally:
                stop(burners)
    print(f"\nsummary: anchor wall / gate CLI wall, min/median/max over {args.repeat} alternating "
          "repetitions (> 1: the gate is faster)")
    for row in rows:
        line = f"  {row['condition']:>5s} {row['case']:>18s}: gate median {np.median(row['gate_s']):6.2f} s"
        for name in anchors:
            if row[name] is None:
                line += f" | {titles[name]} {row['missing'][name]}"
            else:
                line += (f" | {titles[name]} median {np.median(row[name]['s']):6.2f} s, "
                         f"ratio {spread(row[name]['ratio'])}")
        print(line)
    print(f"bench wall time {time.perf_counter() - started:.0f} s; uptime at end: {uptime()}")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


def uptime() -> str:
    """The load averages (1, 5, 15 min) as `uptime` prints them."""
    return "load average: " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def pq_names(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    return pq.read_schema(path).names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--anchor", choices=["alibi", "evidently"], default="alibi")
    parser.add_argument("--sizes", type=int, nargs="*", default=[5_000, 50_000],
                        help="rows a side of the large cases (alibi anchor)")
    parser.add_argument("--bands", type=int, nargs="+", choices=[430, 830], default=[430, 830],
                        help="alibi anchor: 430 = the library grid, 830 = SSP.460's native bands")
    parser.add_argument("--detectors", nargs="+", choices=["ks", "mmd"], default=["ks", "mmd"],
                        help="alibi anchor: KSDrift and/or MMDDrift")
    parser.add_argument("--mmd-timeout", type=float, default=120.0,
                        help="alibi anchor: seconds after which an MMDDrift run is stopped")
    parser.add_argument("--no-contention", action="store_true", help="alibi anchor: skip the busy-machine pass")
    parser.add_argument("--alibi-venv", type=Path, default=ALIBI_VENV)
    parser.add_argument("--alibi-tf-venv", type=Path, default=ALIBI_TF_VENV)
    parser.add_argument("--out", type=Path, default=None, help="alibi anchor: write the rows as JSON")
    parser.add_argument("--large-rows", type=int, default=50_000, help="Evidently anchor: rows of the large case")
    parser.add_argument("--shift", choices=["none", "offset", "gain", "wavelength"], default="none",
                        help="instrument change applied to the candidate of both cases")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--evidently-venv", type=Path, default=EVIDENTLY_VENV)
    parser.add_argument("--skip-evidently", action="store_true")
    args = parser.parse_args(argv)
    if args.anchor == "alibi":
        return alibi_side_by_side(args)

    evidently = None if args.skip_evidently else ensure_evidently(args.evidently_venv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-drift-") as tmp:
        workdir = Path(tmp)
        ref, inc = default_pair(workdir, args.shift)
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
