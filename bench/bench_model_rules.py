"""Selection rules compared in seconds: nested CV of bench_model.py, every member's scores cached once.

For every LimeSoDa dataset with spectra, each target and each of LimeSoDa's 10 outer folds, every member
of params.yaml's ``train.family`` is scored once by the trainer's own inner CV (``cv_splits``, the PLS
components path) on the outer training rows, and its outer-fold predictions are kept for every number of
components. Both go to a cache (``--cache``, outside the repository) keyed by the trainer's selection code
and the params that change the scores, so a rule is then applied to the cached scores with the trainer's
own ``choose`` and judged like bench_model.py (ratio to plain PLS, paired bootstrap CI) without refitting.
The rule is still chosen on inner CV only; this tool only shows what a rule constant would have done,
which is why the trainer README says that its constants were chosen after bench runs. bench_model.py
remains the measurement of record (it runs the real ``fit_model``).

    .venv/bin/python bench/bench_model_rules.py [--tolerance 0 1 1.5 2] [--min-rows 60] [--jobs 2]

Exit code 0 (a comparison, not a gate).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from bench_model import ROOT, bootstrap_fold_rmse, dataset_targets, fold_rmse, interval, spectral_datasets
from threadpoolctl import threadpool_limits

from soil_trainer.config import TrainParams, load_section
from soil_trainer.dataset import load_limesoda
from soil_trainer.model import build_regressor, member_features
from soil_trainer.select import MemberScore, choose, cv_splits, pls_path_predictions
from soil_trainer.select import fold_rmse as path_rmse

CACHE = Path("/var/tmp/soilci-bench/model-cache")
CACHE_FORMAT = 1  # raise when member_paths changes what it stores
TRAINER = ROOT / "services" / "trainer" / "src" / "soil_trainer"


def cache_key(params: TrainParams) -> str:
    """The trainer code and the params the cached scores depend on (not the rule's own constants)."""
    digest = hashlib.sha256(f"format {CACHE_FORMAT}".encode())
    for path in (TRAINER / "select.py", TRAINER / "model.py"):
        digest.update(path.read_bytes())
    scored = params.model_dump(mode="json", include={"seed", "cv_repeats", "family", "pls"})
    digest.update(repr(sorted(scored.items())).encode())
    return digest.hexdigest()[:16]


def member_paths(name: str, target: str, params: TrainParams, cache: Path) -> Path:
    """Cache file of one dataset-target: per outer fold and member, the inner fold RMSEs ``(folds x repeats,
    components)`` and the outer predictions ``(n_test, components)``; computed when missing."""
    if params.model != "pls":
        raise SystemExit("bench_model_rules.py caches the PLS components path; train.model must be pls")
    out = cache / cache_key(params) / f"{name}__{target}.npz"
    if out.exists():
        return out
    data = load_limesoda(name, target)
    spectra = data.frame[data.bands].astype("float64")
    observed = data.frame[target].to_numpy(dtype=float)
    arrays = {"observed": observed, "folds": data.folds}
    with threadpool_limits(limits=1, user_api="blas"):
        features = {m: member_features(spectra, data.bands, m, p)[1] for m, p in params.family.items()}
        for fold in np.unique(data.folds):
            test = data.folds == fold
            rows = np.flatnonzero(~test)
            splits = cv_splits(len(rows), params.cv_folds, params.seed, params.cv_repeats)
            for member, x in features.items():
                x_train, y_train = x[rows], observed[rows]
                top = build_regressor(params, *x_train.shape)[1]["n_components"][-1]
                inner = np.array([path_rmse(pls_path_predictions(x_train[a], y_train[a], x_train[b], top,
                                                                 params.pls.scale), y_train[b]) for a, b in splits])
                arrays[f"{fold}/{member}/inner"] = inner
                arrays[f"{fold}/{member}/outer"] = pls_path_predictions(x_train, y_train, x[test], top, params.pls.scale)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial.npz")
    np.savez_compressed(partial, **arrays)
    partial.replace(out)
    return out


def member_score(name: str, inner: np.ndarray) -> tuple[MemberScore, int]:
    """As ``select.score_pls``: the components with the lowest mean inner RMSE (ties: the fewest)."""
    mean = inner.mean(axis=0)
    best = int(np.argmin(mean))
    return MemberScore(name, {"n_components": best + 1}, float(mean[best]), float(inner[:, best].std()),
                       tuple(float(v) for v in inner[:, best])), best


def apply_rule(cached: dict[str, np.ndarray], params: TrainParams, tolerance: float, min_rows: int
               ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Out-of-fold predictions of plain PLS and of the rule, and the member chosen per outer fold."""
    folds = cached["folds"]
    plain, chosen_pred, chosen = np.empty(len(folds)), np.empty(len(folds)), []
    first = next(iter(params.family))
    for fold in np.unique(folds):
        test = folds == fold
        scored = {m: member_score(m, cached[f"{fold}/{m}/inner"]) for m in params.family}
        family = list(scored) if (~test).sum() >= min_rows else [first]
        pick = choose([scored[m][0] for m in family], tolerance, params.cv_folds)
        plain[test] = cached[f"{fold}/{first}/outer"][:, scored[first][1]]
        chosen_pred[test] = cached[f"{fold}/{pick.name}/outer"][:, scored[pick.name][1]]
        chosen.append(pick.name)
    return plain, chosen_pred, chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--tolerance", type=float, nargs="+", help="default: params.yaml select_tolerance_se")
    parser.add_argument("--min-rows", type=int, nargs="+", help="default: params.yaml select_min_rows")
    parser.add_argument("--datasets", nargs="+", help="default: every LimeSoDa dataset with spectra")
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--jobs", type=int, default=1, help="processes that fill the cache")
    parser.add_argument("--bootstrap", type=int, default=2000)
    args = parser.parse_args(argv)

    params = load_section(args.params, "train", TrainParams)
    jobs = [(d, t) for d in args.datasets or spectral_datasets() for t in dataset_targets(d)]
    with ProcessPoolExecutor(args.jobs) as pool:
        files = list(pool.map(member_paths, *zip(*jobs, strict=True), [params] * len(jobs), [args.cache] * len(jobs)))
    cached = [dict(np.load(f)) for f in files]
    print(f"{len(jobs)} dataset-targets, family {', '.join(params.family)}, cache {files[0].parent}")
    for tolerance in args.tolerance or [params.select_tolerance_se]:
        for min_rows in args.min_rows or [params.select_min_rows]:
            rng = np.random.default_rng(params.seed)
            ratios, draws, worse, better = [], [], [], 0
            for (name, target), arrays in zip(jobs, cached, strict=True):
                observed, folds = arrays["observed"], arrays["folds"]
                plain, chosen, _ = apply_rule(arrays, params, tolerance, min_rows)
                ratios.append(fold_rmse(observed, chosen, folds) / fold_rmse(observed, plain, folds))
                boot_plain, boot_chosen = bootstrap_fold_rmse(observed, [plain, chosen], folds, args.bootstrap, rng)
                draws.append(boot_chosen / boot_plain)
                ci = interval(draws[-1])
                worse += [f"{name} {target} {ratios[-1]:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"] if ci[0] > 1 else []
                better += ci[1] < 1
            mean_ci = interval(np.mean(np.vstack(draws), axis=0))
            print(f"tolerance {tolerance:g} SE, min rows {min_rows}: mean ratio {np.mean(ratios):.4f} "
                  f"[{mean_ci[0]:.3f}, {mean_ci[1]:.3f}], better {better}, worse {len(worse)}"
                  f"{' (' + '; '.join(worse) + ')' if worse else ''}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
