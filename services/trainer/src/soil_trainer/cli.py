"""soil-trainer: argument parsing only; each verb lives in its own module."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from soil_trainer.errors import SoilTrainerError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="soil-trainer",
        description="Prepare data, train, evaluate and register soil-spectroscopy models.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    prep = sub.add_parser("prepare", help="export reference, benchmark and incoming sets from LimeSoDa")
    prep.add_argument("--params", type=Path, default=Path("params.yaml"))
    prep.add_argument("--out-dir", type=Path, default=Path("data"))
    return parser


def run_prepare(args: argparse.Namespace) -> int:
    from soil_trainer.config import PrepareParams, load_section
    from soil_trainer.prepare import split_dataset, write_prepared

    params = load_section(args.params, "prepare", PrepareParams)
    write_prepared(split_dataset(params, root=args.params.parent), args.out_dir)
    return 0


COMMANDS = {"prepare": run_prepare}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    try:
        return COMMANDS[args.command](args)
    except SoilTrainerError as exc:
        print(f"soil-trainer {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
