"""soilci publish-image: the model-api image with one registered model version baked in, pushed by digest."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from soil_contracts.git import UNKNOWN, git_revision
from soil_contracts.records import (
    GIT_REVISION,
    IMAGE_REFERENCE,
    MODEL_NAME,
    MODEL_VERSION,
    REPOSITORY,
    ImageRecord,
    RegisteredVersion,
    check_pattern,
)
from soilci import params
from soilci.delivery.model_files import download_model, read_metadata, stage_model, stamp
from soilci.delivery.refs import image_tag
from soilci.errors import BuildError, ConfigError
from soilci.images import build_image, docker_client, stream_build

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


class PublishError(BuildError):
    """The image could not be pushed (exit 4, as a failed build)."""


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
    if not REPOSITORY.fullmatch(value.lower()):
        raise ConfigError(f"--registry {value!r}: expected host[:port][/namespace]")
    return value.lower()


def _check(flag: str, value: str | None, pattern) -> None:
    """Values pasted into the Dockerfile or given to docker: refuse anything outside ``pattern``."""
    if value is not None:
        try:
            check_pattern(flag, value, pattern)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc


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


def verify_pushed(client, repository: str, tag: str, digest: str) -> None:
    """Ask the registry, through the engine, that ``repository:tag`` now is the manifest ``digest``.

    Raises:
        PublishError: the registry does not serve that manifest under that tag (a push cut short,
            or the tag moved by another push meanwhile).
    """
    try:
        served = client.api.inspect_distribution(f"{repository}:{tag}")["Descriptor"]["digest"]
    except Exception as exc:  # docker.errors.APIError, connection errors
        raise PublishError(f"push of {repository}:{tag} reported {digest}, but the registry does not serve it: "
                           f"{exc}") from exc
    if served != digest:
        raise PublishError(f"push of {repository}:{tag} reported {digest}, but the registry serves {served} "
                           "under that tag; was it pushed again meanwhile?")


def publish_image(
    *,
    model_version: str,
    model_name: str,
    model_dir: Path | None = None,
    tracking_uri: str | None = None,
    registry: str | None = None,
    revision: str | None = None,
    service_image: str | None = None,
    repo: Path = Path("."),
    out: Path | None = None,
    client=None,
    on_line: Callable[[str], None] | None = None,
) -> ImageRecord:
    """Build ``<registry>/soil-model-api:<gitrev12>-v<version>`` with the model inside, push it, record it.

    ``out`` is written last, atomically, and only once the registry serves the pushed digest under
    the tag (``verify_pushed``): a run killed or failed anywhere before leaves no record, and running
    it again builds from cache, pushes what is missing and records it.
    """
    model_version = str(model_version)
    if not MODEL_VERSION.fullmatch(model_version):
        raise ConfigError(f"--model-version {model_version!r}: expected a registered version number")
    _check("--model-name", model_name, MODEL_NAME)
    _check("--service-image", service_image, IMAGE_REFERENCE)
    repository = f"{resolve_registry(registry)}/{IMAGE_NAME}"
    revision = revision or git_revision(Path(repo))
    if revision == UNKNOWN:
        raise ConfigError(f"{repo}: not a git working tree; pass --git-revision")
    _check("--git-revision", revision, GIT_REVISION)
    tag = image_tag(revision, model_version)
    with tempfile.TemporaryDirectory(prefix="soilci-publish-") as tmp:
        # The model first: a wrong model directory fails before anything is built.
        context = Path(tmp)
        if model_dir is None:
            model_dir, meta = download_model(
                model_name, model_version, context / "download", tracking_uri, git_revision=revision
            )
        else:
            meta = read_metadata(Path(model_dir))
        where = Path(model_dir) / meta.FILE
        meta = stamp(meta, model_name=model_name, model_version=model_version, where=where)
        stage_model(Path(model_dir), context / "model", meta)
        shutil.rmtree(context / "download", ignore_errors=True)  # not part of the build context
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
        image_id = stream_build(
            client,
            f"{repository}:{tag}",
            on_line,
            path=str(context),
            buildargs={"SERVICE_IMAGE": service_image},
            pull=False,
        )
    digest = push(client, repository, tag, on_line)
    verify_pushed(client, repository, tag, digest)
    record = ImageRecord(
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
        record.save(out)
    return record


def run(args) -> int:
    """``soilci publish-image``: prints REF@DIGEST on stdout, progress on stderr."""
    on_line = None if args.quiet else (lambda line: print(f"    {line}", file=sys.stderr, flush=True))
    if args.registered:
        registered = RegisteredVersion.load(args.registered)
        model_name, model_version = registered.name, registered.version
    else:
        model_name, model_version = params.model_name(args.model_name, args.params), args.model_version
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
