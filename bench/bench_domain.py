"""Does serving flag shifted samples? Interval coverage, in_domain rates and scale refusals on real data.

    .venv/bin/python bench/bench_domain.py [--model-dir models/model] [--benchmark data/benchmark.parquet]
                                           [--other CV.98] [--params params.yaml] [--out domain.json]

Everything goes through the model API's own code (``load_from_dir``, ``DomainJudge``), in process:

- coverage: share of the held-out benchmark samples whose measured value lies in the served
  interval (goal 85-95% at 90% nominal);
- out of domain: share of benchmark spectra flagged (goal <= 10%) and of another LimeSoDa
  dataset, imported to the library's canonical grid and scale as ``soilci library import`` would
  (goal >= 95%);
- refusals: share of benchmark spectra refused with the scale named when sent as reflectance
  fraction or as absorbance (goal 100%).

Exit 0 when every goal is met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from soil_contracts.library import SAMPLE_ID
from soil_model_api.domain import DomainJudge
from soil_model_api.model_dir import load_from_dir
from soil_model_api.problems import InvalidRequest
from soil_trainer.config import load_library_spec
from soil_trainer.errors import DataError
from soil_trainer.library.formats import read_source
from soil_trainer.library.importer import BatchRequest, canonical_frame

GOALS = {"coverage": (0.85, 0.95), "benchmark_out_of_domain": (0.0, 0.10), "other_out_of_domain": (0.95, 1.0),
         "fraction_refused": (1.0, 1.0), "absorbance_refused": (1.0, 1.0)}


def other_dataset(name: str, params: Path, target: str, unit: str) -> tuple[np.ndarray, list[str]]:
    """A LimeSoDa dataset as a canonical library batch (scale checked, resampled to the grid)."""
    spec = load_library_spec(params)
    raw = read_source(f"limesoda:{name}", id_column=SAMPLE_ID, targets=[target])
    req = BatchRequest(source=f"limesoda:{name}", batch_id="bench", instrument="?", lab="?", date="?",
                       axis=None, scale=spec.scale, targets={target: unit})
    frame = canonical_frame(raw, req, spec)
    bands = spec.grid.columns(spec.axis)
    return frame[bands].to_numpy(np.float64), bands


def refused(judge: DomainJudge, spectra: np.ndarray, named: str) -> float:
    """Share of spectra the service refuses (422, wrong_scale) with ``named`` in the message."""
    hits = 0
    for row in spectra:
        try:
            judge.check_scale(row[None, :])
        except InvalidRequest as exc:
            hits += all(e["type"] == "wrong_scale" and named in e["msg"] for e in exc.errors)
    return hits / len(spectra)


def flagged(model, judge: DomainJudge, spectra: np.ndarray) -> tuple[float, np.ndarray]:
    """Share of spectra scored out of domain, and the predictions."""
    predictions, features = model.predict_with_features(spectra)
    results = judge.results(predictions, judge.score(features), spectra)
    return float(np.mean([r["in_domain"] is False for r in results])), predictions


def measure(model_dir: Path, benchmark: Path, other: str, params: Path) -> dict[str, float | int | str]:
    """The figures of the module docstring for one trained model."""
    model = load_from_dir(model_dir)
    if model.domain is None:
        raise SystemExit(f"{model_dir}: no domain.json; train the model with this version of the trainer")
    info = model.info
    judge = DomainJudge(model.domain, None, info.target, info.unit)
    frame = pd.read_parquet(benchmark)
    spectra = frame[model.bands].to_numpy(np.float64)
    truth = frame[info.target].to_numpy(np.float64)
    bench_out, predictions = flagged(model, judge, spectra)
    width = model.domain.interval(model.domain.default_coverage).half_width
    covered = np.abs(truth - predictions) <= width
    figures: dict[str, float | int | str] = {
        "nominal": model.domain.default_coverage, "coverage": float(covered[np.isfinite(truth)].mean()),
        "half_width": width, "benchmark_rows": len(spectra), "benchmark_out_of_domain": bench_out,
        "fraction_refused": refused(judge, spectra / 100.0, "reflectance fraction"),
        "absorbance_refused": refused(judge, np.log10(100.0 / spectra), "absorbance"), "other": other,
    }
    try:
        values, bands = other_dataset(other, params, info.target, info.unit)
    except DataError as exc:
        raise SystemExit(f"{other}: cannot import to the canonical grid: {exc}") from exc
    if bands != model.bands:
        raise SystemExit(f"{other}: canonical bands differ from the model's; is --params the model's params.yaml?")
    ok_scale = np.array([_scale_ok(judge, row) for row in values])
    out, _ = flagged(model, judge, values[ok_scale]) if ok_scale.any() else (1.0, None)
    # A spectrum refused for its scale is never served silently either: it counts as flagged.
    figures.update(other_rows=len(values), other_refused=int((~ok_scale).sum()),
                   other_out_of_domain=float((out * ok_scale.sum() + (~ok_scale).sum()) / len(values)))
    return figures


def _scale_ok(judge: DomainJudge, row: np.ndarray) -> bool:
    try:
        judge.check_scale(row[None, :])
    except InvalidRequest:
        return False
    return True


def goals_met(figures: dict) -> dict[str, bool]:
    return {key: low - 1e-9 <= float(figures[key]) <= high + 1e-9 for key, (low, high) in GOALS.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path("models/model"))
    parser.add_argument("--benchmark", type=Path, default=Path("data/benchmark.parquet"))
    parser.add_argument("--other", default="CV.98", help="another LimeSoDa dataset (default CV.98)")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="for the library's grid and scale")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    figures = measure(args.model_dir, args.benchmark, args.other, args.params)
    met = goals_met(figures)
    print(f"interval coverage at {figures['nominal']:.0%} nominal: {figures['coverage']:.1%} of "
          f"{figures['benchmark_rows']} benchmark samples (+-{figures['half_width']:.3f}; goal 85-95%) "
          f"{'ok' if met['coverage'] else 'MISSED'}")
    print(f"out of domain, benchmark: {figures['benchmark_out_of_domain']:.1%} (goal <= 10%) "
          f"{'ok' if met['benchmark_out_of_domain'] else 'MISSED'}")
    print(f"out of domain, {figures['other']} ({figures['other_rows']} spectra on the canonical grid; "
          f"{figures['other_refused']} refused for their scale): {figures['other_out_of_domain']:.1%} (goal >= 95%) "
          f"{'ok' if met['other_out_of_domain'] else 'MISSED'}")
    for scale in ("fraction", "absorbance"):
        key = f"{scale}_refused"
        print(f"benchmark as {scale}: {figures[key]:.0%} refused with the scale named (goal 100%) "
              f"{'ok' if met[key] else 'MISSED'}")
    if args.out:
        args.out.write_text(json.dumps({**figures, "goals_met": met}, indent=2) + "\n")
    return 0 if all(met.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
