"""soil-trainer: argument parsing only; each verb lives in its own module."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from soil_contracts.cli import run_main

THREADS_ENV = "SOIL_TRAINER_THREADS"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="soil-trainer",
        description="Prepare data, train, evaluate and register soil-spectroscopy models.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    prep = sub.add_parser("prepare", help="split the spectral library into reference, incoming, training and benchmark sets")
    prep.add_argument("--params", type=Path, default=Path("params.yaml"))
    prep.add_argument("--out-dir", type=Path, default=Path("data"))
    prep.add_argument("--base-listing", type=Path, default=None,
                      help="the base revision's library listing (default: .soilci/base.json beside params)")

    train = sub.add_parser("train", help="fit the model on reference + incoming, log the run to MLflow")
    train.add_argument("--params", type=Path, default=Path("params.yaml"))
    train.add_argument("--data-dir", type=Path, default=Path("data"))
    train.add_argument("--model-dir", type=Path, default=Path("models/model"))

    ev = sub.add_parser("evaluate", help="score the model on the fixed benchmark set")
    ev.add_argument("--params", type=Path, default=Path("params.yaml"))
    ev.add_argument("--model-dir", type=Path, default=Path("models/model"))
    ev.add_argument("--benchmark", type=Path, default=Path("data/benchmark.parquet"))
    ev.add_argument("--metrics", type=Path, default=Path("metrics/metrics.json"))
    ev.add_argument("--predictions", type=Path, default=Path("metrics/predictions.csv"))
    ev.add_argument("--plots-dir", type=Path, default=Path("reports"))

    reg = sub.add_parser("register", help="register the model in MLflow and move alias staging (main only)")
    reg.add_argument("--params", type=Path, default=Path("params.yaml"))
    reg.add_argument("--model-dir", type=Path, default=Path("models/model"))
    reg.add_argument("--metrics", type=Path, default=Path("metrics/metrics.json"))
    reg.add_argument("--name", help="registered model name (default: register.model_name, or derived from prepare.target)")
    reg.add_argument("--branch", help="branch being built (default: GITHUB_REF_NAME, else git)")
    reg.add_argument("--out", type=Path, help="write the registered version's record (name, version, alias, uri, run_id) here")
    return parser


def run_prepare(args: argparse.Namespace) -> int:
    from soil_trainer.config import PrepareParams, load_library_spec, load_section
    from soil_trainer.prepare import run

    params = load_section(args.params, "prepare", PrepareParams)
    summary = run(args.params, params, load_library_spec(args.params), args.out_dir, args.base_listing)
    added = [b.id for b in summary.batches if b.status in ("added", "replaced")]
    print(f"soil-trainer prepare: {summary.training_rows} training rows from {len(summary.batches)} batches; "
          f"drift candidate: {', '.join(added) or 'none'} ({summary.candidate_rows} rows)", file=sys.stderr)
    return 0


def run_train(args: argparse.Namespace) -> int:
    from soil_contracts.library import registered_model_name
    from soil_trainer.config import (
        PrepareParams,
        RegisterParams,
        TrainParams,
        load_library_spec,
        load_section,
    )
    from soil_trainer.train import TargetSpec, train

    params = load_section(args.params, "train", TrainParams)
    prepare = load_section(args.params, "prepare", PrepareParams)
    spec = load_library_spec(args.params)
    name = registered_model_name(prepare.target, load_section(args.params, "register", RegisterParams).model_name)
    target = TargetSpec(name=prepare.target, unit=prepare.unit, axis=spec.axis, scale=spec.scale)
    train(params, target, name, args.data_dir, args.model_dir)
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from soil_trainer.config import EvaluateParams, PrepareParams, load_section
    from soil_trainer.evaluate import evaluate

    params = load_section(args.params, "evaluate", EvaluateParams)
    target = load_section(args.params, "prepare", PrepareParams).target
    evaluate(params, target, args.model_dir, args.benchmark, args.metrics, args.predictions, args.plots_dir)
    return 0


def run_register(args: argparse.Namespace) -> int:
    from soil_contracts.library import registered_model_name
    from soil_trainer.config import PrepareParams, RegisterParams, load_section
    from soil_trainer.registry import register

    params = load_section(args.params, "register", RegisterParams)
    target = load_section(args.params, "prepare", PrepareParams).target
    name = args.name or registered_model_name(target, params.model_name)
    registered = register(args.model_dir, args.metrics, name, params.alias, branch=args.branch)
    if args.out:
        registered.save(args.out)
    print(registered.version)
    return 0


COMMANDS = {"prepare": run_prepare, "train": run_train, "evaluate": run_evaluate, "register": run_register}


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 ok, 1 gate failed, 2 bad input, 3 MLflow unavailable, 70 a crash (never a verdict).

    Every verb runs with ``SOIL_TRAINER_THREADS`` BLAS/OpenMP threads (default 1; ``soil_contracts.threads``).
    """
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run_main("soil-trainer", build_parser(), COMMANDS, argv, threads_env=THREADS_ENV)


if __name__ == "__main__":
    sys.exit(main())
