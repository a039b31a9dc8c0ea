"""Live drift on served traffic: does ``GET /v1/drift`` fail on a shifted window and pass on real spectra?

    .venv/bin/python bench/bench_live_drift.py [--model-dir models/model] [--benchmark data/benchmark.parquet]
                                               [--window 60] [--offsets 0.25 0.5 1 2]

Through the model API's own app, in process (``/v1/predict`` then ``/v1/drift``): for each offset
(percent reflectance added to every band), a window of offset benchmark spectra, then a window of the
benchmark spectra themselves; prints each verdict, its smallest Holm-adjusted p-value, the top
finding and the check's duration, and the cost of putting one spectrum into the window.
Exit 0 when every unshifted window passes and the largest offset fails, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import timeit
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from soil_model_api.app import create_app
from soil_model_api.config import Settings
from soil_model_api.model_dir import load_from_dir


async def run(model_dir: Path, benchmark: Path, window: int, offsets: list[float]) -> list[dict]:
    loaded = load_from_dir(model_dir)
    spectra = pd.read_parquet(benchmark)[loaded.bands].to_numpy(np.float64)[:window]
    app = create_app(Settings(model_dir=model_dir, drift_window=window, drift_interval_seconds=0), model=loaded)
    rows = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api", timeout=300) as c:
        for offset in [0.0, *offsets]:
            for label, values in ((f"+{offset:g} %", spectra + offset), ("benchmark", spectra)):
                if label == "benchmark" and offset == 0.0:
                    continue
                resp = await c.post("/v1/predict", json={"spectra": values.tolist()})
                resp.raise_for_status()
                report = (await c.get("/v1/drift")).json()
                top = next((f for f in report["findings"]), None)
                rows.append({"window": label, "status": report["status"], "p_value": report["p_value"],
                             "top": f"{top['name']} (p={top['p_value']:.2g})" if top else "",
                             "seconds": report["check_seconds"]})
    live = app.state.serving.live
    one = spectra[:1]
    scored = (np.array([1.0]), np.array([0.01]))
    per_call = min(timeit.repeat(lambda: live.observe(one, scored, 10.0, 1.0), number=2000, repeat=5)) / 2000
    rows.append({"insert_us": per_call * 1e6})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path("models/model"))
    parser.add_argument("--benchmark", type=Path, default=Path("data/benchmark.parquet"))
    parser.add_argument("--window", type=int, default=60)
    parser.add_argument("--offsets", type=float, nargs="+", default=[0.25, 0.5, 1.0, 2.0])
    args = parser.parse_args(argv)
    rows = asyncio.run(run(args.model_dir, args.benchmark, args.window, args.offsets))
    insert = rows.pop()["insert_us"]
    print(f"window of {args.window} spectra against the model's calibration sample, in sequence:")
    for r in rows:
        print(f"  {r['window']:<10} {r['status']:<18} p={r['p_value']:.3g}  {r['top']}  ({r['seconds']:.2f} s)")
    print(f"one spectrum into the window and the T2/Q histograms: {insert:.1f} us")
    clean_pass = all(r["status"] == "pass" for r in rows if r["window"] in ("+0 %", "benchmark"))
    largest_fails = rows[-2]["status"] == "fail"
    return 0 if clean_pass and largest_fails else 1


if __name__ == "__main__":
    sys.exit(main())
