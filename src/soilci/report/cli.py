"""Arguments of ``soilci report``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parsers(sub) -> None:
    p = sub.add_parser("report", help="compare this run's metrics with a base revision; write report.md/.html")
    p.add_argument("--base", default="origin/main", help="git revision to compare with")
    p.add_argument("--repo", type=Path, default=Path("."), help="project working tree (default: .)")
    p.add_argument("--out-dir", type=Path, default=Path("."), help="where report.md, report.html and report/ go")


def run_report(args: argparse.Namespace) -> int:
    from soilci.report.write import write_report

    files = write_report(args.repo, args.base, args.out_dir)
    print(f"{files.verdict.icon} {files.verdict.title}: {files.verdict.reason}", file=sys.stderr)
    print(files.markdown)
    print(files.html)
    return 0


COMMANDS = {"report": run_report}
