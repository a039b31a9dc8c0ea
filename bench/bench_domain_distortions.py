"""Does the domain flag see instrument changes that move predictions? Before/after on real spectra.

    .venv/bin/python bench/bench_domain_distortions.py [--model-dir models/model] [--data-dir data]

The benchmark spectra (``data/benchmark.parquet``) are distorted as a changed or badly set-up
instrument would (a +2% reflectance offset on every band, a wavelength shift by one band either
way, a gain of 0.7, a flat 50% reflectance spectrum) and served through the model API's own code
(``load_from_dir``, ``DomainJudge``, in process). For each change the table prints the
prediction's RMSE and bias against the measured values and the share of spectra flagged out of
domain by

- before: the previous domain, rebuilt from ``data/training.parquet`` with the previous rules
  (components by 99% explained variance alone, no flatness or artefact checks);
- after: the model's own ``domain.json``.

The anchor is the untouched benchmark ("none"): its flagged share is the false-alarm rate
(nominal: 1% for T2, 1% for Q, 2% for each artefact check (1% per tail); they overlap). The last column is
what a client relying on the served intervals gets: the share of the intervals still served (in
domain) that cover the measured value (nominal 90%).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from soil_model_api.domain import DomainJudge
from soil_model_api.model_dir import load_from_dir
from soil_trainer.domain import fit_domain

TARGET_UNIT = "%"


def distortions(spectra: np.ndarray) -> dict[str, np.ndarray]:
    """The changes measured, each a (n, n_bands) array (the flat spectrum: 3 rows)."""
    return {
        "none": spectra,
        "offset +2% reflectance": spectra + 2.0,
        "offset +1% reflectance": spectra + 1.0,
        "shift one band (to longer wl)": np.concatenate([spectra[:, :1], spectra[:, :-1]], axis=1),
        "shift one band (to shorter wl)": np.concatenate([spectra[:, 1:], spectra[:, -1:]], axis=1),
        "gain 0.7": spectra * 0.7,
        "gain 0.9": spectra * 0.9,
        "flat 50% reflectance": np.full((3, spectra.shape[1]), 50.0),
    }


def previous_domain(model, training: pd.DataFrame, target: str):
    """The domain as the previous rules built it: explained variance alone, no ``min_span``, no artefact checks."""
    domain = model.domain
    rebuilt = fit_domain(model.estimator, training[model.bands], training[target].to_numpy(float),
                         target_name=target, target_unit=domain.target_unit, scale=domain.scale,
                         intervals=domain.intervals, interval_method=domain.interval_method, latent=0)
    return rebuilt.model_copy(update={"value_range": rebuilt.value_range.model_copy(update={"min_span": None}),
                                      "artefacts": []})


def share_flagged(model, judge: DomainJudge, spectra: np.ndarray, truth: np.ndarray | None = None
                  ) -> tuple[float, float, float]:
    """Share of spectra out of domain, share of those served with an interval anyway, and the share of
    the intervals still served (in domain) that cover ``truth`` (nan without truth or intervals)."""
    predictions, features = model.predict_with_features(spectra)
    results = judge.results(predictions, judge.score(features), spectra)
    out = [r for r in results if r["in_domain"] is False]
    covered = [r["interval"]["lower"] <= y <= r["interval"]["upper"]
               for r, y in zip(results, truth if truth is not None else [], strict=False) if r["interval"]]
    return (len(out) / len(results), float(np.mean([r["interval"] is not None for r in out])) if out else 0.0,
            float(np.mean(covered)) if covered else float("nan"))


def measure(model_dir: Path, data_dir: Path) -> list[dict]:
    """One row per change: RMSE, bias, and flagged shares before and after."""
    model = load_from_dir(model_dir)
    if model.domain is None:
        raise SystemExit(f"{model_dir}: no domain.json")
    target = model.info.target
    training = pd.read_parquet(data_dir / "training.parquet").dropna(subset=[target])
    bench = pd.read_parquet(data_dir / "benchmark.parquet")
    truth = bench[target].to_numpy(np.float64)
    before = DomainJudge(previous_domain(model, training, target), None, target, model.info.unit)
    after = DomainJudge(model.domain, None, target, model.info.unit)
    rows = []
    for name, spectra in distortions(bench[model.bands].to_numpy(np.float64)).items():
        predicted = model.predict_with_features(spectra)[0]
        error = predicted - truth if len(spectra) == len(truth) else None
        rows.append({
            "change": name, "n": len(spectra),
            "rmse": float(np.sqrt(np.mean(error**2))) if error is not None else float("nan"),
            "bias": float(error.mean()) if error is not None else float("nan"),
            "mean_prediction": float(predicted.mean()),
            "before": share_flagged(model, before, spectra)[0],
        })
        rows[-1]["after"], rows[-1]["after_with_interval"], rows[-1]["served_coverage"] = share_flagged(
            model, after, spectra, truth if error is not None else None)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path("models/model"))
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    args = parser.parse_args(argv)
    rows = measure(args.model_dir, args.data_dir)
    model = load_from_dir(args.model_dir)
    print(f"model {args.model_dir}: {len(model.domain.components)} domain components "
          f"(schema {model.domain.schema_version}), flag at {model.domain.flag_confidence:.0%}")
    print(f"{'change':32s} {'n':>4s} {'RMSE':>6s} {'bias':>6s} {'mean pred':>9s} {'flagged before':>15s} "
          f"{'flagged after':>14s} {'flagged w/ interval':>19s} {'coverage of served intervals':>28s}")
    for r in rows:
        print(f"{r['change']:32s} {r['n']:4d} {r['rmse']:6.2f} {r['bias']:+6.2f} {r['mean_prediction']:9.2f} "
              f"{r['before']:15.1%} {r['after']:14.1%} {r['after_with_interval']:19.0%} "
              f"{r['served_coverage']:28.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
