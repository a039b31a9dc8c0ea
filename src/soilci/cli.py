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
    p.add_argument("--local", action="store_true", help="run the stages here, without Docker")
    p.add_argument("--repo", type=Path, default=Path("."), help="project working tree (default: .)")
    p.add_argument("--base", default="origin/main",
                   help="revision the report compares with when a gate stops the run (default: origin/main)")
    p.add_argument("--out-dir", type=Path, default=None,
                   help="where that report goes (default: the working tree)")
    p.add_argument("--push", action="store_true", help="push the outputs to the DVC remote after a good run")


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="compare this run's metrics with a base revision; write report.md/.html")
    p.add_argument("--base", default="origin/main", help="git revision to compare with")
    p.add_argument("--repo", type=Path, default=Path("."), help="project working tree (default: .)")
    p.add_argument("--out-dir", type=Path, default=Path("."), help="where report.md, report.html and report/ go")


def _add_manifests_args(p) -> None:
    p.add_argument("--manifests-repo", required=True, metavar="URL",
                   help="git URL or path of the manifests repo (a token may sit in the URL; it is never printed)")
    p.add_argument("--branch", default=None, help="branch Argo CD tracks (default: the repo's default branch)")
    p.add_argument("--overlay", default="deploy/kustomize/overlays/staging", help="overlay path inside the repo")


def _add_delivery(sub) -> None:
    p = sub.add_parser("publish-image", help="build the model-api image for a model version and push it")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--model-version", help="registered version of the model to bake in")
    which.add_argument("--registered", type=Path, metavar="JSON",
                       help="soil-trainer register's --out file (name and version) instead of --model-version")
    p.add_argument("--model-name", default="soil-carbon", help="registered model name (register.model_name)")
    p.add_argument("--model-dir", type=Path, default=None,
                   help="MLflow model directory to bake in (default: download models:/NAME/VERSION)")
    p.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: MLFLOW_TRACKING_URI)")
    p.add_argument("--registry", default=None, help="host[:port][/namespace] (default: REGISTRY)")
    p.add_argument("--git-revision", default=None, help="commit the image is built from (default: the repo's HEAD)")
    p.add_argument("--service-image", default=None,
                   help="existing soil-model-api image to bake onto (default: build it)")
    p.add_argument("--repo", type=Path, default=Path("."))
    p.add_argument("--out", type=Path, default=Path("image.json"), help="where to record the pushed digest")
    p.add_argument("--quiet", action="store_true", help="do not stream build and push output")

    p = sub.add_parser("bump", help="set the idle colour's image in the manifests repo and push")
    _add_manifests_args(p)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--image", help="REF@sha256:DIGEST, tag <gitrev>-v<version> as publish-image makes it")
    src.add_argument("--from", dest="from_json", type=Path, metavar="IMAGE_JSON",
                     help="publish-image's --out record instead of --image")
    p.add_argument("--model-name", default="soil-carbon")
    p.add_argument("--model-version", default=None, help="default: from the image tag")
    p.add_argument("--git-revision", default=None, help="default: from the image tag")

    for verb, text in (("promote", "switch live traffic to the preview colour"),
                       ("rollback", "switch live traffic back to the previous colour")):
        p = sub.add_parser(verb, help=text)
        _add_manifests_args(p)
        p.add_argument("--preview-url", required=True,
                       help="URL of the colour about to go live (in a cluster: the model-api-preview Service)")
        p.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: MLFLOW_TRACKING_URI)")
        if verb == "promote":
            p.add_argument("--expect-version", default=None,
                           help="refuse unless the preview colour pins this model version")

    p = sub.add_parser("status", help="which colour is live and what each colour runs")
    _add_manifests_args(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def _delivery(module: str, func: str = "run"):
    """A COMMANDS entry that imports its module only when called."""
    def call(args: argparse.Namespace) -> int:
        import importlib

        return getattr(importlib.import_module(f"soilci.{module}"), func)(args)

    return call


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


def run_pipeline(args: argparse.Namespace) -> int:
    from soilci.pipeline import run_pipeline as run

    return run(args.repo, local=args.local, base=args.base, out_dir=args.out_dir, push_outputs=args.push)


def run_report(args: argparse.Namespace) -> int:
    from soilci.report import write_report

    files = write_report(args.repo, args.base, args.out_dir)
    print(f"{files.verdict.icon} {files.verdict.title}: {files.verdict.reason}", file=sys.stderr)
    print(files.markdown)
    print(files.html)
    return 0


def _not_built(args: argparse.Namespace) -> int:
    print(f"soilci {args.command}: not available in this version", file=sys.stderr)
    return 2


COMMANDS = {
    "build": run_build,
    "pipeline": run_pipeline,
    "report": run_report,
    "publish-image": _delivery("publish"),
    "bump": _delivery("bump"),
    "promote": _delivery("promote", "run_promote"),
    "rollback": _delivery("promote", "run_rollback"),
    "status": _delivery("gitops"),
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
