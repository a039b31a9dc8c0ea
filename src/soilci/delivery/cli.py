"""Arguments of the delivery verbs: publish-image, bump, promote, rollback, status."""

from __future__ import annotations

import argparse
from pathlib import Path

from soilci.delivery.overlay import DEFAULT_OVERLAY
from soilci.params import DEFAULT_PARAMS


def _add_manifests_args(p) -> None:
    p.add_argument("--manifests-repo", required=True, metavar="URL",
                   help="git URL or path of the manifests repo (a token may sit in the URL; it is never printed)")
    p.add_argument("--branch", default=None, help="branch Argo CD tracks (default: the repo's default branch)")
    p.add_argument("--overlay", default=DEFAULT_OVERLAY, help="overlay path inside the repo")


def _add_model_name_args(p) -> None:
    p.add_argument("--model-name", default=None,
                   help="registered model name (default: register.model_name in --params)")
    p.add_argument("--params", type=Path, default=DEFAULT_PARAMS, help="params.yaml to read register.model_name from")


def add_parsers(sub) -> None:
    p = sub.add_parser("publish-image", help="build the model-api image for a model version and push it")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--model-version", help="registered version of the model to bake in")
    which.add_argument("--registered", type=Path, metavar="JSON",
                       help="soil-trainer register's --out file (name and version) instead of --model-version")
    _add_model_name_args(p)
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

    p = sub.add_parser("bump", help="set the idle slot's image in the manifests repo and push")
    _add_manifests_args(p)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--image", help="REF@sha256:DIGEST, tag <gitrev>-v<version> as publish-image makes it")
    src.add_argument("--from", dest="from_json", type=Path, metavar="IMAGE_JSON",
                     help="publish-image's --out record instead of --image")
    _add_model_name_args(p)
    p.add_argument("--model-version", default=None, help="default: from the image tag")
    p.add_argument("--git-revision", default=None, help="default: from the image tag")
    p.add_argument("--allow-downgrade", action="store_true",
                   help="pin the image even if a slot holds a newer version of the model")

    for verb, text in (("promote", "switch live traffic to the preview slot"),
                       ("rollback", "switch live traffic back to the previous slot")):
        p = sub.add_parser(verb, help=text)
        _add_manifests_args(p)
        p.add_argument("--preview-url", required=True,
                       help="URL of the slot about to go live (in a cluster: the model-api-preview Service)")
        p.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: MLFLOW_TRACKING_URI)")
        if verb == "promote":
            p.add_argument("--expect-version", default=None,
                           help="refuse unless the preview slot pins this model version")

    p = sub.add_parser("status", help="which slot is live and what each slot runs")
    _add_manifests_args(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def _verb(module: str, func: str = "run"):
    """A COMMANDS entry that imports its module only when called."""
    def call(args: argparse.Namespace) -> int:
        import importlib

        return getattr(importlib.import_module(f"soilci.delivery.{module}"), func)(args)

    return call


COMMANDS = {
    "publish-image": _verb("publish"),
    "bump": _verb("bump"),
    "promote": _verb("promote", "run_promote"),
    "rollback": _verb("promote", "run_rollback"),
    "status": _verb("status"),
}
