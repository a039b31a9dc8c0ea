"""False-positive rate and power of the drift gate on real LimeSoDa spectra.

    .venv/bin/python bench/drift_power.py [--splits 100] [--datasets SSP.460 SP.231 NRW.115]

1. Honest splits: random 50/50 splits of each dataset; the default configuration must flag at most
   5% of them. The naive rule "KS on every band, fail if any band has p < 0.05" is run beside it.
2. Default-sized honest splits of SSP.460 (322 reference vs 46 candidate, as `prepare` cuts it), and
   the real prepare split (reference.parquet vs incoming.parquet): must pass.
3. Instrument changes applied to the candidate half of SSP.460 splits: baseline offset of 1% of the
   mean signal, a 5% gain (multiplicative scatter), a one-band wavelength shift (edge-padded); plus a
   random per-sample scatter (sd 5%) that is reported but not expected to be detectable.
4. Batches from another field measured on the same kind of instrument (LimeSoDa datasets that share
   their band columns): must be flagged.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from soil_drift.config import load_params
from soil_drift.gate import check_drift
from soil_drift.inputs import validate_pair
from soil_drift.readers import Table

REPO = Path(__file__).resolve().parents[1]
BAND = re.compile(r"^(wl|wn)_\d+(\.\d+)?$")
FIELD_PAIRS = [("SSP.58", "MG.44"), ("MG.44", "SSP.58"), ("NRW.115", "NRW.62"), ("NRW.115", "NRW.42"),
               ("NRW.62", "NRW.42")]


def load(name: str) -> pd.DataFrame:
    """sample_id, the dataset's carbon target (SOC or SOM), then the bands, as prepare writes them."""
    from LimeSoDa import load_dataset

    data = load_dataset(name)["Dataset"]
    bands = [c for c in data.columns if BAND.match(str(c))]
    target = "SOC_target" if "SOC_target" in data.columns else "SOM_target"
    frame = pd.DataFrame({"sample_id": [f"{name}:{i}" for i in range(len(data))]})
    frame[target] = data[target].to_numpy(float)
    return pd.concat([frame, data[bands].reset_index(drop=True).astype(float)], axis=1)


def bands_of(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if BAND.match(str(c))]


def offset(x: np.ndarray) -> np.ndarray:
    return x + 0.01 * x.mean()


def gain(x: np.ndarray) -> np.ndarray:
    return x * 1.05


def wavelength_shift(x: np.ndarray) -> np.ndarray:
    return np.concatenate([x[:, :1], x[:, :-1]], axis=1)


SCATTER_RNG = np.random.default_rng(7)


def random_scatter(x: np.ndarray) -> np.ndarray:
    return x * SCATTER_RNG.normal(1.0, 0.05, size=(len(x), 1))


SHIFTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "baseline offset 1% of mean signal": offset,
    "multiplicative scatter 5% (gain x1.05)": gain,
    "one-band wavelength shift": wavelength_shift,
    "random per-sample scatter, sd 5%": random_scatter,
}


def apply(frame: pd.DataFrame, change: Callable[[np.ndarray], np.ndarray]) -> pd.DataFrame:
    out = frame.copy()
    bands = bands_of(frame)
    out[bands] = change(frame[bands].to_numpy(float))
    return out


def gate(reference: pd.DataFrame, candidate: pd.DataFrame, params):
    inputs = validate_pair(Table.from_frame(reference, "reference"), Table.from_frame(candidate, "candidate"),
                           params)
    return check_drift(inputs, params)


def per_band_ks_any(reference: pd.DataFrame, candidate: pd.DataFrame) -> bool:
    bands = bands_of(reference)
    p = stats.ks_2samp(reference[bands].to_numpy(), candidate[bands].to_numpy(), axis=0).pvalue
    return bool(np.min(p) < 0.05)


def splits(n: int, n_ref: int, n_cand: int, count: int, seed: int):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        idx = rng.permutation(n)
        yield idx[:n_ref], idx[n_ref:n_ref + n_cand]


def rate(flags: list[bool]) -> str:
    k, n = sum(flags), len(flags)
    lo, hi = wilson(k, n)
    return f"{k:3d}/{n} = {100 * k / n:5.1f}%  (95% CI {100 * lo:.1f}-{100 * hi:.1f}%)"


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=100)
    parser.add_argument("--datasets", nargs="+", default=["SSP.460", "SP.231", "NRW.115"])
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    print(f"drift params: {params.model_dump()}")
    start = time.perf_counter()
    data = {name: load(name) for name in args.datasets}

    print("\n1. Honest 50/50 splits (flagged = false positive)")
    for name, frame in data.items():
        n = len(frame)
        gate_flags, naive_flags = [], []
        for a, b in splits(n, n // 2, n - n // 2, args.splits, seed=1):
            ref, cand = frame.iloc[a], frame.iloc[b]
            gate_flags.append(gate(ref, cand, params).drift_detected)
            naive_flags.append(per_band_ks_any(ref, cand))
        print(f"  {name:8s} ({n // 2} vs {n - n // 2}) gate: {rate(gate_flags)} | "
              f"per-band KS, any band: {rate(naive_flags)}")

    main_name = args.datasets[0]
    frame = data[main_name]
    print(f"\n2. {main_name} at the default split size (322 reference vs 46 candidate)")
    flags = [gate(frame.iloc[a], frame.iloc[b], params).drift_detected
             for a, b in splits(len(frame), 322, 46, args.splits, seed=2)]
    print(f"  honest random 322/46 splits: {rate(flags)}")
    ref_path, inc_path = REPO / "data" / "reference.parquet", REPO / "data" / "incoming.parquet"
    if ref_path.exists() and inc_path.exists():
        verdict = gate(pd.read_parquet(ref_path), pd.read_parquet(inc_path), params)
        print(f"  prepare's split (data/reference.parquet vs data/incoming.parquet): {verdict.status}")

    print(f"\n3. Instrument changes applied to the candidate part of {main_name} splits (flagged = detected)")
    n = len(frame)
    for label, change in SHIFTS.items():
        halves = [gate(frame.iloc[a], apply(frame.iloc[b], change), params).drift_detected
                  for a, b in splits(n, n // 2, n - n // 2, args.splits, seed=3)]
        small = [gate(frame.iloc[a], apply(frame.iloc[b], change), params).drift_detected
                 for a, b in splits(n, 322, 46, args.splits, seed=4)] if n >= 368 else []
        tail = f" | 322 vs 46: {rate(small)}" if small else ""
        print(f"  {label:42s} halves: {rate(halves)}{tail}")
    for name in args.datasets[1:]:
        other = data[name]
        m = len(other)
        cells = []
        for label, change in list(SHIFTS.items())[:3]:
            hits = [gate(other.iloc[a], apply(other.iloc[b], change), params).drift_detected
                    for a, b in splits(m, m // 2, m - m // 2, args.splits, seed=5)]
            cells.append(f"{label.split(' (')[0]}: {100 * np.mean(hits):.0f}%")
        print(f"  {name} halves: " + "; ".join(cells))

    print("\n4. A batch from another field, same kind of instrument (reference -> candidate)")
    for ref_name, cand_name in FIELD_PAIRS:
        ref, cand = load(ref_name), load(cand_name)
        target = next(c for c in ref.columns if c.endswith("_target"))
        full = gate(ref, cand, params)
        spectra_only = gate(ref.drop(columns=[target]), cand.drop(columns=[target]), params)
        top = ", ".join(t.name for t in full.drifted_tests[:4])
        print(f"  {ref_name:7s} -> {cand_name:7s} ({len(ref)} vs {len(cand)}): {full.status} "
              f"[{top}]; spectra only: {spectra_only.status}; regions: "
              f"{', '.join(r.name for r in full.regions[:3]) or '-'}")
    print(f"\n(total {time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
