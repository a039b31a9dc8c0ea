"""soil-drift: argument parsing only; the gate lives in gate.py."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from soil_drift.errors import SoilDriftError

DEFAULT_PARAMS = Path("params.yaml")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="soil-drift",
        description="Data-drift gate for soil spectra and soil properties. "
        "Exit 0: no drift (or drift with --warn-only); 1: drift; 2: bad input, params or usage.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="compare a candidate table with the trusted reference")
    check.add_argument("reference", type=Path, help="trusted reference data (.parquet or .csv)")
    check.add_argument("candidate", type=Path, help="candidate data the PR brings (.parquet or .csv)")
    check.add_argument("--params", type=Path, default=None,
                       help="params.yaml with a drift: section (default: ./params.yaml if present)")
    check.add_argument("--out", type=Path, default=None,
                       help="write the JSON verdict here (default: print it to stdout)")
    check.add_argument("--plot", type=Path, default=None, help="write the PNG figure here")
    check.add_argument("--warn-only", action="store_true",
                       help="report drift as status 'warn' and exit 0")
    return parser


def run_check(args: argparse.Namespace) -> int:
    from soil_drift.check import check_files
    from soil_drift.config import load_params

    params_path = args.params
    if params_path is None and DEFAULT_PARAMS.is_file():
        params_path = DEFAULT_PARAMS
    verdict = check_files(
        args.reference, args.candidate, load_params(params_path),
        out=args.out, plot=args.plot, warn_only=args.warn_only,
    )
    print(f"soil-drift check: {verdict.status}: {verdict.summary}", file=sys.stderr)
    return 1 if verdict.status == "fail" else 0


COMMANDS = {"check": run_check}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    try:
        return COMMANDS[args.command](args)
    except SoilDriftError as exc:
        print(f"soil-drift {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
