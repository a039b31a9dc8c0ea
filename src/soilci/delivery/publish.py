"""soilci publish-image: the model-api image with one registered model version baked in, pushed by digest."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from soil_contracts.files import atomic_path

from soilci.delivery.gitops import TAG_PATTERN
from soilci.errors import ConfigError, SoilCIError
from soilci.images import build_image, docker_client, git_revision, stream_build

IMAGE_NAME = "soil-model-api"
MODEL_PATH = "/models/model"

# The service image plus the model: nothing is installed, so the build needs no network.
BAKE_DOCKERFILE = """\
# soil-model-api serving {model_name} v{model_version}, baked by soilci publish-image.
ARG SERVICE_IMAGE
FROM ${{SERVICE_IMAGE}}
# Root-owned and read-only for the runtime user: the model is part of the image, not state.
COPY model {model_path}
ENV MODEL_DIR={model_path} \\
    MODEL_URI="" \\
    MODEL_API_IMAGE_TAG={tag}
LABEL io.soilci.model.name="{model_name}" \\
      io.soilci.model.version="{model_version}" \\
      org.opencontainers.image.revision="{git_revision}" \\
      org.opencontainers.image.version="{tag}"
CMD ["serve"]
"""


class PublishError(SoilCIError):
    """The image could not be built or pushed."""

    exit_code = 4


@dataclass(frozen=True)
class Published:
    """The record publish-image writes (``--out``) and bump reads."""

    image: str  # repository:tag@digest
    repository: str
    tag: str
    digest: str
    image_id: str
    model_name: str
    model_version: str
    git_revision: str
    service_image: str


def image_tag(revision: str, model_version: str) -> str:
    """``<gitrev12>[-dirty]-v<version>``: which code and which model, readable in any registry UI."""
    dirty = revision.endswith("-dirty")
    rev = revision.removesuffix("-dirty")[:12]
    tag = f"{rev}{'-dirty' if dirty else ''}-v{model_version}"
    if not TAG_PATTERN.match(tag):
        raise ConfigError(f"git revision {revision!r} is not a hex commit id; pass --git-revision")
    return tag


def resolve_registry(registry: str | None) -> str:
    """``--registry``, else ``REGISTRY``/``SOILCI_REGISTRY``; lower-cased as image names must be."""
    value = registry or os.environ.get("REGISTRY") or os.environ.get("SOILCI_REGISTRY")
    if not value:
        raise ConfigError(
            "no registry: pass --registry or set REGISTRY (e.g. ghcr.io/<owner>, 127.0.0.1:5000)"
        )
    value = value.strip().rstrip("/")
    if "://" in value:
        raise ConfigError(f"--registry {value!r}: give host[:port][/namespace], without a scheme")
    return value.lower()


def stage_model(
    model_dir: Path, dest: Path, *, model_name: str, model_version: str, git_revision: str
) -> None:
    """Copy the model directory into the build context, its soilci.json stamped with the version."""
    model_dir = Path(model_dir)
    if not (model_dir / "MLmodel").is_file():
        raise ConfigError(f"{model_dir}: not an MLflow model directory (no MLmodel file)")
    shutil.copytree(model_dir, dest)
    meta_path = dest / "soilci.json"
    meta = {}
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except ValueError as exc:
            raise ConfigError(f"{model_dir / 'soilci.json'}: not valid JSON ({exc})") from exc
    recorded = meta.get("version")
    if recorded not in (None, "") and str(recorded) != str(model_version):
        raise ConfigError(
            f"{model_dir / 'soilci.json'}: records version {recorded}, but --model-version is {model_version}"
        )
    if meta.get("name") not in (None, model_name):
        raise ConfigError(f"{model_dir / 'soilci.json'}: records model {meta['name']!r}, not {model_name!r}")
    meta.update(name=model_name, version=str(model_version))
    meta.setdefault("git_revision", git_revision)
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    # Readable by the image's non-root user whatever the umask of the machine that trained it.
    for path in [dest, *dest.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def download_model(model_name: str, model_version: str, dest: Path, tracking_uri: str | None) -> Path:
    """Fetch ``models:/<name>/<version>`` from the MLflow registry into ``dest``."""
    import mlflow.artifacts

    uri = f"models:/{model_name}/{model_version}"
    tracking_uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not tracking_uri:
        raise ConfigError("no --model-dir and no MLFLOW_TRACKING_URI: cannot fetch the registered model")
    from mlflow.tracking import MlflowClient

    try:
        # Resolve the version's storage location with an explicit registry, then fetch through the server.
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        location = client.get_model_version_download_uri(model_name, model_version)
        dest.mkdir(parents=True, exist_ok=True)
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=location, dst_path=str(dest), tracking_uri=tracking_uri
        )
    except Exception as exc:  # MlflowException, connection errors
        raise ConfigError(f"cannot download {uri} from {tracking_uri}: {exc}") from exc
    return Path(local)


def _build(client, context: Path, tag: str, service_image: str, on_line) -> str:
    return stream_build(client, tag, on_line, path=str(context), buildargs={"SERVICE_IMAGE": service_image}, pull=False)


def push(client, repository: str, tag: str, on_line: Callable[[str], None] | None = None) -> str:
    """Push ``repository:tag``; return the digest the registry answered with."""
    digest = None
    try:
        stream = client.images.push(repository, tag=tag, stream=True, decode=True)
        for chunk in stream:
            if "error" in chunk:
                detail = chunk.get("errorDetail", {}).get("message", chunk["error"])
                raise PublishError(f"push of {repository}:{tag} failed: {detail}")
            if on_line and chunk.get("status"):
                on_line(f"{chunk.get('id', '')} {chunk['status']}".strip())
            aux = chunk.get("aux") or {}
            if aux.get("Digest"):
                digest = aux["Digest"]
    except PublishError:
        raise
    except Exception as exc:  # docker.errors.APIError, connection errors
        raise PublishError(f"push of {repository}:{tag} failed: {exc}") from exc
    if not digest:
        raise PublishError(f"push of {repository}:{tag} reported no digest")
    return digest


def publish_image(
    *,
    model_version: str,
    model_name: str = "soil-carbon",
    model_dir: Path | None = None,
    tracking_uri: str | None = None,
    registry: str | None = None,
    revision: str | None = None,
    service_image: str | None = None,
    repo: Path = Path("."),
    out: Path | None = None,
    client=None,
    on_line: Callable[[str], None] | None = None,
) -> Published:
    """Build ``<registry>/soil-model-api:<gitrev12>-v<version>`` with the model inside, push it, record it."""
    model_version = str(model_version)
    if not model_version.isdigit():
        raise ConfigError(f"--model-version {model_version!r}: expected a registered version number")
    repository = f"{resolve_registry(registry)}/{IMAGE_NAME}"
    revision = revision or git_revision(Path(repo))
    if revision == "unknown":
        raise ConfigError(f"{repo}: not a git working tree; pass --git-revision")
    tag = image_tag(revision, model_version)
    with tempfile.TemporaryDirectory(prefix="soilci-publish-") as tmp:
        # The model first: a wrong model directory fails before anything is built.
        context = Path(tmp)
        if model_dir is None:
            model_dir = download_model(model_name, model_version, context / "download", tracking_uri)
        stage_model(
            Path(model_dir),
            context / "model",
            model_name=model_name,
            model_version=model_version,
            git_revision=revision,
        )
        shutil.rmtree(context / "download", ignore_errors=True)
        (context / "Dockerfile").write_text(
            BAKE_DOCKERFILE.format(
                model_name=model_name,
                model_version=model_version,
                model_path=MODEL_PATH,
                tag=tag,
                git_revision=revision,
            )
        )
        client = client or docker_client()
        if service_image is None:
            service_image = build_image(
                "model-api", tag=tag.rsplit("-v", 1)[0], root=Path(repo), client=client, on_line=on_line
            ).tag
        image_id = _build(client, context, f"{repository}:{tag}", service_image, on_line)
    digest = push(client, repository, tag, on_line)
    record = Published(
        image=f"{repository}:{tag}@{digest}",
        repository=repository,
        tag=tag,
        digest=digest,
        image_id=image_id,
        model_name=model_name,
        model_version=model_version,
        git_revision=revision,
        service_image=service_image,
    )
    if out is not None:
        with atomic_path(Path(out)) as tmp_out:
            tmp_out.write_text(json.dumps(asdict(record), indent=2) + "\n")
    return record


def read_registered(path: Path) -> tuple[str, str]:
    """``(name, version)`` from ``soil-trainer register --out``."""
    try:
        record = json.loads(Path(path).read_text())
        return str(record["name"]), str(record["version"])
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found (soil-trainer register --out writes it)") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not a register record with name and version ({exc})") from exc


def run(args) -> int:
    """``soilci publish-image``: prints REF@DIGEST on stdout, progress on stderr."""
    import sys

    on_line = None if args.quiet else (lambda line: print(f"    {line}", file=sys.stderr, flush=True))
    model_name, model_version = args.model_name, args.model_version
    if args.registered:
        model_name, model_version = read_registered(args.registered)
    record = publish_image(
        model_version=model_version,
        model_name=model_name,
        model_dir=args.model_dir,
        tracking_uri=args.tracking_uri,
        registry=args.registry,
        revision=args.git_revision,
        service_image=args.service_image,
        repo=args.repo,
        out=args.out,
        on_line=on_line,
    )
    print(
        f"pushed {record.repository}:{record.tag} ({record.model_name} v{record.model_version}); "
        f"recorded in {args.out}",
        file=sys.stderr,
    )
    print(record.image)
    return 0
