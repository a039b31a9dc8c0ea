"""Arguments of ``soilci build`` and ``soilci pipeline``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parsers(sub) -> None:
    p = sub.add_parser("build", help="build the service images (drift, trainer, model-api)")
    p.add_argument("services", nargs="*", metavar="SERVICE", help="default: all three")
    p.add_argument("--tag", default=None, help="image tag (default: SOILCI_IMAGE_TAG or 'local')")
    p.add_argument("--quiet", action="store_true", help="do not stream the build output")

    p = sub.add_parser(
        "pipeline", help="run dvc.yaml's stale stages in their service containers",
        description="Run dvc.yaml's stale stages, each in its service's image (--local: in this environment), "
                    "recording each with DVC; then push and register if asked. runs/<id>/ holds the run's "
                    "record (run.json) and each stage's log.",
        epilog="exit codes: 0 every stage passed; 1 a gate said no (drift, or evaluate's RMSE ceiling); 2 bad "
               "input, params or settings (nothing written); 3 no Docker engine, no 'local' extra, or another "
               "run holds the tree; 4 an image failed to build; 70 internal error; a stage's own code when it "
               "failed otherwise; 129, 130, 143 stopped by SIGHUP, SIGINT, SIGTERM (run.json says where).")
    p.add_argument("--local", action="store_true", help="run the stages here, without Docker")
    p.add_argument("--repo", type=Path, default=Path("."), help="project working tree (default: .)")
    p.add_argument("--base", default=None,
                   help="revision whose library the branch's is compared with: the drift gate's candidate is "
                        "what the branch adds (default: origin/main, else main, else HEAD)")
    p.add_argument("--push", action="store_true", help="push the outputs to the DVC remote after a good run")
    p.add_argument("--register", action="store_true",
                   help="main only: after a good run, soil-trainer register (alias staging) through the same "
                        "runner; the version goes to runs/registered.json")
    p.add_argument("--branch", default=None,
                   help="branch passed to soil-trainer register (default: GITHUB_REF_NAME, else git)")


def run_build(args: argparse.Namespace) -> int:
    from soilci.images import SERVICES, build_image

    for service in args.services or SERVICES:
        print(f"==> building soil-{service}", file=sys.stderr, flush=True)
        on_line = None if args.quiet else (lambda line: print(f"    {line}", file=sys.stderr, flush=True))
        built = build_image(service, tag=args.tag, on_line=on_line)
        print(f"{built.tag} {built.image_id}")
    return 0


def run_pipeline(args: argparse.Namespace) -> int:
    from soilci.pipeline.run import run_pipeline as run

    return run(args.repo, local=args.local, base=args.base, push_outputs=args.push, register=args.register,
               branch=args.branch)


COMMANDS = {"build": run_build, "pipeline": run_pipeline}
