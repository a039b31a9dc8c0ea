"""The one way soil-ci loads a scikit-learn model: skops with soil-ci's own type allowlist, digest first.

A model file is data written by whoever can write the MLflow registry or its artifact store, so it
is never unpickled. Every loader (evaluate, register, the model API, publish-image's check)
goes through here:

- ``check_digest``: the files must hash to the ``soilci.model_digest`` that ``soil-trainer
  register`` recorded on the version (registry loaders only; a version without one is refused);
- ``model_file``: the MLmodel must declare the skops format and the standard file name: pickle and
  cloudpickle files are refused before a byte of them is read;
- ``load_estimator``: the skops file may hold only skops' default-trusted types (scikit-learn
  estimators, numpy ufuncs and arrays) plus ``TRUSTED_TYPES``; the MLmodel's own
  ``skops_trusted_types`` is ignored, since whoever wrote the model wrote that list too.

A refusal is ``UntrustedModelError`` (exit 5). ``load_estimator`` needs the ``skops`` package,
which the trainer and the model API install; ``soilci`` uses only the checks.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml

from soil_contracts.errors import ContractError, UntrustedModelError

DIGEST_TAG = "soilci.model_digest"  # the registry version tag register writes
SERIALIZATION = "skops"
MODEL_FILE = "model.skops"  # MLflow's name for the sklearn flavor's skops file
MLMODEL = "MLmodel"
# What soil-trainer's pipelines hold beyond skops' defaults (soil_trainer.model): the resampling
# matrix product, SNV, the Savitzky-Golay filter, and a random forest's trees. Functions and
# types only: nothing here runs on load, they are called by predict.
TRUSTED_TYPES = (
    "numpy.dot",
    "scipy.signal._savitzky_golay.savgol_filter",
    "sklearn.preprocessing._data.scale",
    "sklearn.tree._tree.Tree",
)


def model_digest(model_dir: Path) -> str:
    """sha256 over the directory's files: each relative POSIX name and its bytes' sha256, names sorted.

    Two directories with the same files and bytes have the same digest, wherever they are; any
    change to a file, its name or the set of files changes it.
    """
    model_dir = Path(model_dir)
    files = sorted((p.relative_to(model_dir).as_posix(), p) for p in model_dir.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for name, path in files:
        digest.update(f"{name}\0{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def check_digest(model_dir: Path, recorded: str | None, where: str) -> str:
    """Refuse ``model_dir`` unless its ``model_digest`` equals ``recorded`` (the version's tag).

    Args:
        model_dir: the downloaded version's files, before anything in them is read.
        recorded: the version's ``soilci.model_digest`` tag; None or "" when it has none.
        where: the version, for messages (``models:/soil-soc/3``).

    Returns:
        The digest.

    Raises:
        UntrustedModelError: no digest recorded (not made by ``soil-trainer register``), or another one.
    """
    if not recorded:
        raise UntrustedModelError(
            f"{where}: refusing to load it: the version has no {DIGEST_TAG} tag, so `soil-trainer register` "
            "did not create it (a version made by hand or by another tool)"
        )
    actual = model_digest(model_dir)
    if actual != recorded:
        raise UntrustedModelError(
            f"{where}: refusing to load it: its files (sha256 {actual[:16]}...) do not match the digest recorded "
            f"at registration ({DIGEST_TAG} {recorded[:16]}...); the artifacts were changed after registration"
        )
    return actual


def model_file(model_dir: Path) -> Path:
    """The skops file of an MLflow sklearn model directory, after checking its declared format.

    Raises:
        ContractError: no readable MLmodel, or no sklearn flavor (exit 2).
        UntrustedModelError: the format is not skops (pickle, cloudpickle) or the file is not
            ``model.skops`` in the directory itself.
    """
    model_dir = Path(model_dir)
    mlmodel_path = model_dir / MLMODEL
    try:
        mlmodel = yaml.safe_load(mlmodel_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ContractError(f"{mlmodel_path}: cannot read ({type(exc).__name__}: {exc})") from exc
    flavor = ((mlmodel or {}).get("flavors") or {}).get("sklearn") if isinstance(mlmodel, dict) else None
    if not isinstance(flavor, dict):
        raise ContractError(f"{mlmodel_path}: no sklearn flavor; not a soil-trainer model")
    fmt = flavor.get("serialization_format", "pickle")
    if fmt != SERIALIZATION:
        raise UntrustedModelError(
            f"{mlmodel_path}: refusing to load a {fmt!r} model: pickle can run any code when loaded; soil-ci "
            f"loads only the {SERIALIZATION} format (retrain with this version of soil-trainer)"
        )
    if flavor.get("pickled_model") != MODEL_FILE:
        raise UntrustedModelError(
            f"{mlmodel_path}: refusing to load it: the model file is {flavor.get('pickled_model')!r}, not {MODEL_FILE}"
        )
    path = model_dir / MODEL_FILE
    if path.is_symlink() or not path.is_file():
        raise ContractError(f"{path}: missing or not a regular file")
    return path


def load_estimator(model_dir: Path) -> Any:
    """The fitted scikit-learn estimator of a model directory, loaded without running code from it.

    Raises:
        ContractError: unreadable or corrupt model file (exit 2).
        UntrustedModelError: not skops, or it names a type outside skops' defaults and ``TRUSTED_TYPES``.
    """
    import skops.io

    path = model_file(model_dir)
    try:
        untrusted = skops.io.get_untrusted_types(file=path)
    except Exception as exc:  # a zip or JSON error, whatever the file holds
        raise ContractError(f"{path}: not a readable skops file ({type(exc).__name__}: {exc})") from exc
    unknown = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if unknown:
        raise UntrustedModelError(
            f"{path}: refusing to load it: it names types outside soil-ci's allowlist ({', '.join(unknown)})"
        )
    try:
        estimator = skops.io.load(path, trusted=list(TRUSTED_TYPES))
    except Exception as exc:  # skops raises what the recorded constructors raise
        raise ContractError(f"{path}: cannot load ({type(exc).__name__}: {exc})") from exc
    if not callable(getattr(estimator, "predict", None)):
        raise ContractError(f"{path}: {type(estimator).__name__} has no predict method")
    return estimator
