"""Arguments of ``soilci report``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "report",
        help="compare this run's metrics with a base revision; write report.md/.html",
        description="Compare this run's benchmark results with a base revision and write report.md/.html.",
        epilog="exit codes: 0 ready to merge, needs review or not comparable (a ::warning:: line is printed); "
               "1 do not merge (after the report is written; --exit-zero makes it 0); 2 bad input "
               "(no such --base, unreadable result files); 70 internal error.",
    )
    p.add_argument("--base", default="origin/main", help="git revision to compare with")
    p.add_argument("--repo", type=Path, default=Path("."), help="project working tree (default: .)")
    p.add_argument("--out-dir", type=Path, default=Path("."), help="where report.md, report.html and report/ go")
    p.add_argument("--exit-zero", action="store_true",
                   help="exit 0 even when the verdict is 'Do not merge' (local use; CI wants the failure)")


def run_report(args: argparse.Namespace) -> int:
    from soilci.report.status import announce, verdict_exit_code
    from soilci.report.write import write_report

    files = write_report(args.repo, args.base, args.out_dir)
    print(f"{files.verdict.icon} {files.verdict.title}: {files.headline}; {files.verdict.reason}", file=sys.stderr)
    print(files.markdown)
    print(files.html)
    announce(files.verdict, files.headline)
    return verdict_exit_code(files.verdict, exit_zero=args.exit_zero)


COMMANDS = {"report": run_report}
