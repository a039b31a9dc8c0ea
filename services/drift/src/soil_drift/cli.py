"""soil-drift: argument parsing only; the gate lives in gate.py."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from soil_contracts.cli import run_main
from soil_contracts.errors import ExitCode
from soil_drift.errors import require_extra, translate_read_error
from soil_drift.threads import THREADS_ENV

PROG = "soil-drift"
DEFAULT_PARAMS = Path("params.yaml")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Data-drift gate for soil spectra and soil properties. "
        "Exit 0: no drift (or drift with --warn-only); 1: drift; 2: bad input, params or usage; "
        "70: internal error (a crash, never a verdict).",
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
    check.add_argument("--library", type=Path, default=None,
                       help="the library summary prepare wrote (data/library.json): a candidate batch with a "
                            "recorded drift acceptance warns instead of failing, when the other batches do not drift")
    return parser


def run_check(args: argparse.Namespace) -> int:
    from soil_drift.check import check_files
    from soil_drift.config import load_params

    for module in ("pyarrow", "pandas"):
        require_extra(module, "files", "reading the input files")
    if args.plot is not None:
        require_extra("matplotlib", "plot", "--plot")
    params_path = args.params
    if params_path is None and DEFAULT_PARAMS.is_file():
        params_path = DEFAULT_PARAMS
    verdict = check_files(
        args.reference, args.candidate, load_params(params_path),
        out=args.out, plot=args.plot, warn_only=args.warn_only, library=args.library,
    )
    print(f"{PROG} check: {verdict.status}: {verdict.summary}", file=sys.stderr)
    return ExitCode.VERDICT if verdict.status == "fail" else ExitCode.OK


COMMANDS = {"check": run_check}


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 pass (or accepted drift), 1 drift, 2 bad input, 70 a crash; BLAS/OpenMP pools get
    ``SOIL_DRIFT_THREADS`` threads (default 1)."""
    return run_main(PROG, build_parser(), COMMANDS, argv, translate=translate_read_error, threads_env=THREADS_ENV)


if __name__ == "__main__":
    sys.exit(main())
