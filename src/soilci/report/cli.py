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
        epilog="exit codes: 0 ready to merge, needs review or not comparable (a warning line is printed: "
               "::warning:: under GitHub Actions); 1 do not merge (after the report is written; --exit-zero makes it 0); 2 bad input "
               "(no such --base, unreadable result files); 70 internal error.",
    )
    p.add_argument("--base", default="origin/main", help="git revision to compare with")
    p.add_argument("--repo", type=Path, default=Path("."), help="project working tree (default: .)")
    p.add_argument("--out-dir", type=Path, default=Path("."), help="where report.md, report.html and report/ go")
    p.add_argument("--exit-zero", action="store_true",
                   help="exit 0 even when the verdict is 'Do not merge' (local use; CI wants the failure)")


    r = sub.add_parser(
        "results",
        help="fetch main's published results (by commit) from the DVC remote, or publish this commit's",
        description="pull: fetch the results record of --base (or its nearest first-parent ancestor that has "
                    "one) from the DVC remote into .soilci/results/, where soilci report reads it. Main's "
                    "workflow publishes one per commit with soilci pipeline --push; nobody commits results by "
                    "hand. push: the same for a tree whose pipeline already ran (scripts/up.sh's stack): dvc "
                    "push of the outputs and HEAD's results record.",
        epilog="exit codes: 0 fetched or published (or, with --missing-ok, no record: a warning line is "
               "printed, ::warning:: under GitHub Actions); 1 no record of --base or its ancestors; 2 no such --base, no DVC remote, or (push) "
               "results that are not HEAD's last run; 3 the remote cannot be read, or a pipeline run holds the "
               "tree; 70 internal error.",
    )
    r.add_argument("action", choices=["pull", "push"],
                   help="pull: fetch into .soilci/results/; push: publish this tree's outputs and results")
    r.add_argument("--base", default="origin/main", help="git revision whose results to fetch")
    r.add_argument("--repo", type=Path, default=Path("."), help="project working tree (default: .)")
    r.add_argument("--missing-ok", action="store_true",
                   help="exit 0 with a workflow warning when the remote holds no record yet (main's first run); "
                        "a missing or unreadable remote still fails")


def run_results(args: argparse.Namespace) -> int:
    from soil_contracts.errors import ExitCode
    from soilci.report.baseline import ancestors, pull, push_results
    from soilci.report.inputs import resolve_revision
    from soilci.report.status import annotate

    repo = args.repo.resolve()
    if args.action == "push":
        commit, where = push_results(repo)
        print(f"soilci results: outputs pushed; results of {commit[:12]} published for reports: {where}",
              file=sys.stderr)
        return ExitCode.OK
    chain = ancestors(repo, resolve_revision(repo, args.base))
    found = pull(repo, chain)
    newest = next((i for i, c in enumerate(chain) if c in found), None)
    if newest is None:
        missing = (f"no results of {args.base} ({chain[0][:7]}) or its {len(chain) - 1} previous commits in the "
                   "DVC remote")
        print(f"soilci results: {missing}", file=sys.stderr)
        if args.missing_ok:
            annotate("warning", "No baseline", f"{missing}; the report will compare against nothing")
            return ExitCode.OK
        return ExitCode.VERDICT
    behind = f", {newest} commit(s) before {args.base}" if newest else ""
    print(f"soilci results: fetched the results of {chain[newest][:7]}{behind} into .soilci/results/",
          file=sys.stderr)
    return ExitCode.OK


def run_report(args: argparse.Namespace) -> int:
    from soilci.report.status import announce, verdict_exit_code
    from soilci.report.write import write_report

    files = write_report(args.repo, args.base, args.out_dir)
    print(f"{files.verdict.icon} {files.verdict.title}: {files.headline}; {files.verdict.reason}", file=sys.stderr)
    print(files.markdown)
    print(files.html)
    announce(files.verdict, files.headline)
    return verdict_exit_code(files.verdict, exit_zero=args.exit_zero)


COMMANDS = {"report": run_report, "results": run_results}
