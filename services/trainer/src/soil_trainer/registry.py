"""register: a new version of the registered model, tagged with its lineage, alias ``staging``.

Runs only from ``main``. The version is created with all its tags in one call; if moving the
alias fails afterwards, the version is deleted again, or (server gone) the message names it and the
next run of the same model sets the alias on it instead of creating another.
Each version holds the evaluated model directory's files as they are and carries their digest
(tag ``soilci.model_digest``): every loader checks the download against it before reading a file
(``soil_contracts.model_file``). When the alias already points at a version with this digest, that
version is the outcome and nothing is created, so registering the same model twice gives one version.
``production`` is never touched here: only promotion moves it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from soil_contracts.git import git_branch
from soil_contracts.model import ModelMetadata
from soil_contracts.model_file import DIGEST_TAG, model_file
from soil_contracts.records import RegisteredVersion
from soil_contracts.redact import redact_url
from soil_trainer.errors import DataError, TrackingError, UsageError
from soil_trainer.saved_model import load_metadata, model_digest
from soil_trainer.tracking import configure_mlflow, ensure_reachable, experiment_name, with_retry

log = logging.getLogger(__name__)

RELEASE_BRANCH = "main"
MODEL_PATH = "soilci-model"  # where a run holds the registered, evaluated model directory
__all__ = ["DIGEST_TAG", "register"]
NOT_FOUND = {"RESOURCE_DOES_NOT_EXIST", "ENDPOINT_NOT_FOUND", "NOT_FOUND"}


def check_branch(branch: str | None) -> str:
    """Registration happens only from main; anything else is a usage error (exit 2)."""
    branch = branch or git_branch()
    if branch != RELEASE_BRANCH:
        raise UsageError(
            f"register runs only on the {RELEASE_BRANCH} branch, not {branch or 'an unknown branch'!r}; "
            "pull requests train and evaluate but never register"
        )
    return branch


def read_metrics(path: Path) -> dict[str, Any]:
    """evaluate's ``metrics.json`` (flat benchmark numbers). Raises DataError naming the file."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: benchmark metrics (run evaluate first) not found")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object")
    return data


def version_tags(meta: ModelMetadata, metrics: dict[str, Any], digest: str) -> dict[str, str]:
    """Lineage, the model digest, the target and its unit, and ``metric.<name>`` per benchmark number."""
    tags = {"git_revision": meta.git_revision, "data_version": meta.data_version, DIGEST_TAG: digest,
            "target": meta.target, "target_unit": meta.target_unit}
    tags.update({f"metric.{k}": str(v) for k, v in sorted(metrics.items()) if isinstance(v, (int, float))})
    return tags


def model_source(client, model_dir: Path, meta: ModelMetadata, uri: str = "") -> tuple[str, str]:
    """``(source, run_id)``: the evaluated model directory's own files, uploaded to a run.

    The version holds the evaluated directory byte for byte (never a re-serialized copy), so the
    ``soilci.model_digest`` tag on it is what every loader recomputes after download. The files go
    into the train stage's run (``soilci-model/``) when the server knows that run (the usual case on
    main, where train and register share ``MLFLOW_TRACKING_URI``), else into a new run ``register``.
    Uploading the same files again overwrites them with the same bytes. Only a definite "does not
    exist" leads to a new run: a transient failure (503, a dropped connection) is retried and then
    raises TrackingError, so a flaky server never makes a second run of one model. Nothing is loaded.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    run_id = meta.run_id
    if run_id:

        def known() -> bool:
            try:
                client.get_run(run_id)
            except MlflowException as exc:
                if exc.error_code in NOT_FOUND:
                    log.info("run %s is not on this server (%s); logging the saved model", run_id, exc.error_code)
                    return False
                raise
            return True

        if with_retry(known, f"look up the train run {run_id}", uri):
            with_retry(lambda: client.log_artifacts(run_id, str(model_dir), MODEL_PATH),
                       f"upload the model to run {run_id}", uri)
            return f"runs:/{run_id}/{MODEL_PATH}", run_id
    mlflow.set_experiment(experiment_name(meta.name))
    with mlflow.start_run(run_name="register") as run:
        mlflow.set_tags({"git_revision": meta.git_revision, "data_version": meta.data_version,
                         "target": meta.target, "target_unit": meta.target_unit})
        mlflow.log_artifacts(str(model_dir), artifact_path=MODEL_PATH)
    return f"runs:/{run.info.run_id}/{MODEL_PATH}", run.info.run_id


def newest_version(client, name: str):
    """The highest-numbered version of ``name``, or None."""
    versions = client.search_model_versions(f"name='{name}'", max_results=1, order_by=["version_number DESC"])
    return versions[0] if versions else None


def check_identity(name: str, newest, meta: ModelMetadata) -> None:
    """Refuse to add a model of another target or unit to ``name`` (its newest version's tags say).

    Raises:
        UsageError: the registered model predicts another target or unit (exit 2).
    """
    if newest is None:
        return
    target, unit = newest.tags.get("target"), newest.tags.get("target_unit")
    if (target, unit) != (meta.target, meta.target_unit):
        raise UsageError(
            f"{name} version {newest.version} predicts {target or 'an unrecorded target'} ({unit or '?'}), this "
            f"model predicts {meta.target} ({meta.target_unit}); register it under a name of its own "
            "(params.yaml register.model_name, or null to derive it from the target)"
        )


def current_version(client, name: str, alias: str, digest: str):
    """The version ``name@alias`` when it carries ``digest``; None otherwise or when there is none."""
    from mlflow.exceptions import MlflowException

    try:
        version = client.get_registered_model(name).aliases.get(alias)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        return None
    if version is None:
        return None
    current = client.get_model_version(name, version)
    return current if current.tags.get(DIGEST_TAG) == digest else None


def version_record(name: str, version: str, alias: str, run_id: str | None) -> RegisteredVersion:
    """The ``--out`` record of version ``version`` of ``name``."""
    return RegisteredVersion(
        name=name, version=str(version), alias=alias, uri=f"models:/{name}/{version}", run_id=run_id or ""
    )


def register(
    model_dir: Path,
    metrics_path: Path,
    name: str,
    alias: str,
    branch: str | None = None,
) -> RegisteredVersion:
    """Create version N of ``name`` from the trained model and point ``alias`` at it.

    When ``name@alias`` already is this model (same digest), return that version and create nothing.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    check_branch(branch)
    meta = load_metadata(model_dir)
    model_file(Path(model_dir))  # only a model every loader accepts is registered (pickle: exit 5)
    metrics = read_metrics(metrics_path)
    digest = model_digest(model_dir)
    uri = configure_mlflow()
    ensure_reachable(uri)
    client = MlflowClient()

    existing = with_retry(lambda: current_version(client, name, alias, digest), f"look up {name}@{alias}", uri)
    if existing is not None:
        log.info("already registered: %s version %s (alias %s) is this model; nothing created",
                 name, existing.version, alias)
        return version_record(name, existing.version, alias, existing.run_id)

    orphan = with_retry(lambda: orphan_version(client, name, digest), f"look for unaliased {name} versions", uri)
    if orphan is not None:  # an earlier run created it and died before the alias: finish that run's work
        log.info("%s version %s is this model without an alias (an earlier run failed); using it", name,
                 orphan.version)
        with_retry(lambda: client.set_registered_model_alias(name, alias, orphan.version),
                   f"set alias {alias} on {name} version {orphan.version}", uri)
        return version_record(name, orphan.version, alias, orphan.run_id)

    try:
        source, run_id = model_source(client, Path(model_dir), meta, uri)
    except TrackingError:
        raise
    except Exception as exc:
        raise TrackingError(f"logging the model to {redact_url(uri)} failed: {exc}") from exc

    def _ensure_registered_model() -> None:
        try:
            client.get_registered_model(name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            client.create_registered_model(name, description="Soil property model (soil-ci)")

    with_retry(_ensure_registered_model, f"create registered model {name}", uri)
    check_identity(name, with_retry(lambda: newest_version(client, name), f"read the versions of {name}", uri), meta)
    try:
        version = client.create_model_version(
            name, source=source, run_id=run_id, tags=version_tags(meta, metrics, digest)
        )
    except Exception as exc:
        # The server may have created it before the answer was lost: say what is left, never guess.
        raise TrackingError(
            f"creating a version of {name} on {redact_url(uri)} failed: {exc}; "
            f"{_left_after_failure(client, name, digest, alias)}"
        ) from exc

    try:
        if version.status != "READY":
            version = _wait_ready(client, name, version.version)
        client.set_registered_model_alias(name, alias, version.version)
    except Exception as exc:
        if _delete_quietly(client, name, version.version):
            left = "version deleted"
        else:
            left = (f"version {version.version} is left in the registry without alias {alias!r} (it could not "
                    "be deleted); the next register run of this model sets the alias on it")
        raise TrackingError(
            f"setting alias {alias!r} on {name} version {version.version} failed, {left}: {exc}"
        ) from exc
    log.info("registered %s version %s, alias %s", name, version.version, alias)
    return version_record(name, version.version, alias, run_id)


def _wait_ready(client, name: str, version: str, timeout_s: float = 120.0):
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        current = client.get_model_version(name, version)
        if current.status == "READY":
            return current
        if current.status == "FAILED_REGISTRATION" or time.monotonic() > deadline:
            raise TrackingError(f"{name} version {version} is {current.status}")
        time.sleep(1.0)


def orphan_version(client, name: str, digest: str):
    """The newest version of ``name`` if it carries ``digest`` and no alias points at it, else None."""
    from mlflow.exceptions import MlflowException

    try:
        aliased = set(client.get_registered_model(name).aliases.values())
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        return None
    newest = newest_version(client, name)
    unaliased = newest is not None and str(newest.version) not in {str(a) for a in aliased}
    return newest if unaliased and newest.tags.get(DIGEST_TAG) == digest else None


def _left_after_failure(client, name: str, digest: str, alias: str) -> str:
    """What a failed create left: no version, an unaliased one (named), or unknown (server gone)."""
    try:
        orphan = orphan_version(client, name, digest)
    except Exception:  # noqa: BLE001 - the server is gone: we cannot know
        return (f"the server did not answer afterwards, so a version of this model may exist without alias "
                f"{alias!r}; the next register run of this model sets the alias on it")
    if orphan is None:
        return "no version was created"
    return (f"version {orphan.version} was created without alias {alias!r}; the next register run of this "
            "model sets the alias on it")


def _delete_quietly(client, name: str, version: str) -> bool:
    """Delete a version after a failed alias move; whether it is gone."""
    try:
        client.delete_model_version(name, version)
    except Exception as exc:  # noqa: BLE001 - the server may be gone; say so, the caller still fails
        if getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST":
            return True
        log.error("could not delete %s version %s after a failed registration: %s", name, version, exc)
        return False
    return True
