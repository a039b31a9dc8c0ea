"""soilci: argument parsing only; each verb lives in its own module."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from soilci.errors import SoilCIError


def _add_build(sub) -> None:
    p = sub.add_parser("build", help="build the service images (drift, trainer, model-api)")
    p.add_argument("services", nargs="*", metavar="SERVICE", help="default: all three")
    p.add_argument("--tag", default=None, help="image tag (default: SOILCI_IMAGE_TAG or 'local')")
    p.add_argument("--quiet", action="store_true", help="do not stream the build output")


def _add_pipeline(sub) -> None:
    p = sub.add_parser("pipeline", help="run pull -> drift -> train -> evaluate in containers")
    p.add_argument("--local", action="store_true", help="run the stages here with dvc repro, no Docker")
    p.add_argument("--repo", type=Path, default=Path("."), help="project working tree (default: .)")


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="compare this run's metrics with a base revision; write report.md/.html")
    p.add_argument("--base", default="origin/main", help="git revision to compare with")
    p.add_argument("--repo", type=Path, default=Path("."))
    p.add_argument("--out-dir", type=Path, default=Path("."))


def _add_delivery(sub) -> None:
    p = sub.add_parser("publish-image", help="build the model-api image for a model version and push it")
    p.add_argument("--model-version", required=True)
    p.add_argument("--repo", type=Path, default=Path("."))

    p = sub.add_parser("bump", help="set the idle colour's image in the manifests repo and push")
    p.add_argument("--manifests-repo", required=True)
    p.add_argument("--image", required=True, help="REF@sha256:DIGEST")

    for verb, text in (("promote", "switch live traffic to the preview colour"),
                       ("rollback", "switch live traffic back to the previous colour")):
        p = sub.add_parser(verb, help=text)
        p.add_argument("--manifests-repo", required=True)

    p = sub.add_parser("status", help="which colour is live and what each colour runs")
    p.add_argument("--manifests-repo", required=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="soilci", description="Continuous ML for soil-spectroscopy models.")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_build(sub)
    _add_pipeline(sub)
    _add_report(sub)
    _add_delivery(sub)
    return parser


def run_build(args: argparse.Namespace) -> int:
    from soilci.images import SERVICES, build_image

    for service in args.services or SERVICES:
        print(f"==> building soil-{service}", file=sys.stderr, flush=True)
        on_line = None if args.quiet else (lambda line: print(f"    {line}", file=sys.stderr, flush=True))
        built = build_image(service, tag=args.tag, on_line=on_line)
        print(f"{built.tag} {built.image_id}")
    return 0


def _not_built(args: argparse.Namespace) -> int:
    print(f"soilci {args.command}: not available in this version", file=sys.stderr)
    return 2


COMMANDS = {
    "build": run_build,
    "pipeline": _not_built,
    "report": _not_built,
    "publish-image": _not_built,
    "bump": _not_built,
    "promote": _not_built,
    "rollback": _not_built,
    "status": _not_built,
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        return COMMANDS[args.command](args)
    except SoilCIError as exc:
        print(f"soilci {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
