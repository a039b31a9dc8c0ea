"""Model integrity across every loader, against a real MLflow server: the pickle_rce case and its kind.

A registry version whose ``model.pkl`` runs code when unpickled, moved to ``@staging`` (the case in
shared/cases/security/pickle_rce), is refused by the model API, evaluate, register and publish-image
with exit 5 and a message saying why, and its code never runs (its marker file is never created):
with no recorded digest, with a digest forged by whoever wrote the version, and from a local
directory. A good version whose files change after registration is refused too.
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

from soil_contracts.bands import band_columns
from soil_contracts.model import ModelMetadata
from soil_contracts.model_file import DIGEST_TAG, TRUSTED_TYPES, model_digest
from tests.support import REPO_ROOT

UNTRUSTED = 5  # soil_contracts.errors.ExitCode.UNTRUSTED_MODEL
REVISION = "0123456789abcdef0123456789abcdef01234567"


class Payload:
    """Unpickling this runs a shell command that creates ``marker``: the attack of the case."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"id > {self.marker}",))


def fit_model(data_dir: Path, out: Path, serialization: str, rows: slice = slice(0, 60)) -> Path:
    """A small real pipeline saved as soil-trainer saves models (signature, soilci.json)."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.cross_decomposition import PLSRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, scale

    reference = pd.read_parquet(data_dir / "reference.parquet").iloc[rows]
    bands = band_columns(reference.columns)
    X, y = reference[bands].astype("float64"), reference["SOC_target"]
    pipeline = make_pipeline(FunctionTransformer(scale, kw_args={"axis": 1}), PLSRegression(n_components=3))
    pipeline.fit(X, y)
    trusted = list(TRUSTED_TYPES) if serialization == "skops" else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.sklearn.save_model(pipeline, str(out), serialization_format=serialization, skops_trusted_types=trusted,
                                  signature=infer_signature(X, pipeline.predict(X)), pip_requirements=["scikit-learn"])
    ModelMetadata(name="soil-soc", git_revision=REVISION, data_version="test", target="SOC_target", target_unit="%",
                  bands=bands, model="pls").save(out / ModelMetadata.FILE)
    return out


@pytest.fixture(scope="module")
def models(prepared_data, tmp_path_factory) -> dict[str, Path]:
    """{'good': a skops model, 'other': another skops model, 'evil': the case's pickle model, 'marker': ...}."""
    root = tmp_path_factory.mktemp("integrity")
    marker = root / "EXECUTED"
    evil = fit_model(prepared_data, root / "evil", "pickle")
    (evil / "model.pkl").write_bytes(pickle.dumps(Payload(marker)))
    good = fit_model(prepared_data, root / "good", "skops")
    other = fit_model(prepared_data, root / "other", "skops", slice(60, 120))
    return {"good": good, "other": other, "evil": evil, "marker": marker}


def register_version(tracking_uri: str, name: str, model_dir: Path, tags: dict[str, str]) -> tuple[str, str]:
    """A version of ``name`` holding ``model_dir``'s files, with ``tags``, aliased ``staging``: (version, run id).

    This is what anyone with write access to the registry can do, without soil-trainer register.
    """
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("integrity-tests")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(model_dir), artifact_path="model")
        mlflow.set_tags({"target": "SOC_target", "target_unit": "%", "data_version": "test",
                         "git_revision": REVISION})
    if not client.search_registered_models(f"name='{name}'"):
        client.create_registered_model(name)
    version = client.create_model_version(name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id, tags=tags)
    client.set_registered_model_alias(name, "staging", version.version)
    return str(version.version), run.info.run_id


@dataclass
class Done:
    returncode: int
    stderr: str


# What a CLI reads from the environment about where its model and registry are: each call sets its own.
SOURCE_ENV = ("MODEL_URI", "MODEL_DIR", "MLFLOW_TRACKING_URI", "DOCKER_HOST")


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """Run a console script's ``main`` in this process, with ``env`` as the only model/registry settings.

    The entry points are ``sys.exit(main())``: ``main``'s return is the process's exit code, its messages
    go to sys.stderr. In process, each call skips the 5-8 s of imports (sklearn, mlflow) a new
    interpreter pays; a payload that ran would still create its marker file.
    """
    from soil_model_api.config import SOURCE_VARIABLES, get_settings

    def run(main, argv: list[str], env: dict[str, str], cwd: Path | None = None) -> Done:
        with monkeypatch.context() as mp:
            for var in (*SOURCE_VARIABLES, *SOURCE_ENV):
                mp.delenv(var, raising=False)
            for key, value in env.items():
                mp.setenv(key, value)
            if cwd is not None:
                mp.chdir(cwd)
            get_settings.cache_clear()
            capsys.readouterr()
            try:
                code = main(argv)
            finally:
                get_settings.cache_clear()
        return Done(code, capsys.readouterr().err)

    return run


@pytest.fixture
def model_api_check(run_cli):
    """``soil-model-api check`` of a registry version."""
    from soil_model_api.cli import main

    def check(tracking_uri: str, uri: str) -> Done:
        return run_cli(main, ["check"], {"MODEL_URI": uri, "MLFLOW_TRACKING_URI": tracking_uri})

    return check


def test_the_case_payload_runs_when_unpickled(models, tmp_path):
    # The reproducer is live: a plain pickle.load of its model.pkl creates the marker.
    marker = tmp_path / "ran"
    data = pickle.dumps(Payload(marker))
    subprocess.run([sys.executable, "-c", "import pickle, sys; pickle.loads(sys.stdin.buffer.read())"],
                   input=data, check=True)
    assert marker.exists()


def test_model_api_refuses_a_pickle_version_without_a_recorded_digest(models, mlflow_server, model_api_check):
    register_version(mlflow_server, "integrity-untagged", models["evil"], tags={})
    done = model_api_check(mlflow_server, "models:/integrity-untagged@staging")
    assert done.returncode == UNTRUSTED, done.stderr
    assert f"has no {DIGEST_TAG} tag" in done.stderr
    assert not models["marker"].exists()


def test_model_api_refuses_a_pickle_version_even_when_its_digest_is_forged(models, mlflow_server, model_api_check):
    # Whoever can create a version can tag it: the digest passes, the format does not.
    register_version(mlflow_server, "integrity-forged", models["evil"], tags={DIGEST_TAG: model_digest(models["evil"])})
    done = model_api_check(mlflow_server, "models:/integrity-forged@staging")
    assert done.returncode == UNTRUSTED, done.stderr
    assert "refusing to load a 'pickle' model" in done.stderr
    assert not models["marker"].exists()


def test_model_api_refuses_a_version_whose_files_changed_after_registration(models, mlflow_server, model_api_check):
    from mlflow import MlflowClient

    version, run_id = register_version(mlflow_server, "integrity-tampered", models["good"],
                                       tags={DIGEST_TAG: model_digest(models["good"])})
    served = model_api_check(mlflow_server, "models:/integrity-tampered@staging")
    assert served.returncode == 0, served.stderr  # the registered files load
    # The artifact store is written behind the registry's back: another model's file, same name.
    MlflowClient(mlflow_server).log_artifact(run_id, str(models["other"] / "model.skops"), "model")
    done = model_api_check(mlflow_server, f"models:/integrity-tampered/{version}")
    assert done.returncode == UNTRUSTED, done.stderr
    assert "do not match the digest recorded at registration" in done.stderr


def test_model_api_refuses_a_pickle_model_directory(models, run_cli):
    from soil_model_api.cli import main

    done = run_cli(main, ["check"], {"MODEL_DIR": str(models["evil"])})
    assert done.returncode == UNTRUSTED, done.stderr
    assert "refusing to load a 'pickle' model" in done.stderr
    assert not models["marker"].exists()


def test_evaluate_refuses_a_pickle_model_and_writes_nothing(models, prepared_data, tmp_path, run_cli):
    from soil_trainer.cli import main

    out = tmp_path / "metrics"
    done = run_cli(main, ["evaluate", "--params", str(REPO_ROOT / "params.yaml"),
                    "--model-dir", str(models["evil"]), "--benchmark", str(prepared_data / "benchmark.parquet"),
                    "--metrics", str(out / "metrics.json"), "--predictions", str(out / "predictions.csv"),
                    "--plots-dir", str(out / "plots")], {})
    assert done.returncode == UNTRUSTED, done.stderr
    assert "refusing to load a 'pickle' model" in done.stderr
    assert not out.exists()
    assert not models["marker"].exists()


def test_register_refuses_a_pickle_model_and_creates_no_version(models, mlflow_server, tmp_path, run_cli):
    from mlflow import MlflowClient

    from soil_trainer.cli import main

    metrics = tmp_path / "metrics.json"
    metrics.write_text('{"rmse": 0.5}')
    done = run_cli(main, ["register", "--params", str(REPO_ROOT / "params.yaml"),
                    "--model-dir", str(models["evil"]), "--metrics", str(metrics), "--name", "integrity-register",
                    "--branch", "main"], {"MLFLOW_TRACKING_URI": mlflow_server})
    assert done.returncode == UNTRUSTED, done.stderr
    assert "refusing to load a 'pickle' model" in done.stderr
    assert not MlflowClient(mlflow_server).search_registered_models("name='integrity-register'")
    assert not models["marker"].exists()


@pytest.mark.parametrize("source", ["registry", "model-dir"])
def test_publish_image_refuses_a_pickle_model_before_building(models, mlflow_server, tmp_path, source, run_cli):
    from soilci.cli import main

    name = "integrity-publish"
    version, _ = register_version(mlflow_server, name, models["evil"], tags={DIGEST_TAG: model_digest(models["evil"])})
    extra = ["--model-dir", str(models["evil"])] if source == "model-dir" else ["--tracking-uri", mlflow_server]
    out = tmp_path / "image.json"
    done = run_cli(main, ["publish-image", "--model-name", name, "--model-version", version,
                    "--registry", "127.0.0.1:9/none", "--git-revision", REVISION,
                    "--service-image", "soil-model-api:never-built", "--out", str(out), "--quiet", *extra],
                   {"DOCKER_HOST": "unix:///nonexistent.sock"}, cwd=tmp_path)
    assert done.returncode == UNTRUSTED, done.stderr
    assert "refusing to load a 'pickle' model" in done.stderr
    assert not out.exists()
    assert not models["marker"].exists()


def test_skops_types_outside_the_allowlist_are_refused_whatever_mlmodel_trusts(models, tmp_path):
    # A skops model may name any function; soil-ci ignores the MLmodel's skops_trusted_types.
    import skops.io
    from sklearn.preprocessing import FunctionTransformer

    from soil_contracts.errors import UntrustedModelError
    from soil_contracts.model_file import load_estimator

    crafted = shutil.copytree(models["good"], tmp_path / "crafted")
    skops.io.dump(FunctionTransformer(os.system), crafted / "model.skops")
    mlmodel = yaml.safe_load((crafted / "MLmodel").read_text())
    mlmodel["flavors"]["sklearn"]["skops_trusted_types"] = ["posix.system"]
    (crafted / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    with pytest.raises(UntrustedModelError, match=r"outside soil-ci's allowlist \(posix.system\)"):
        load_estimator(crafted)
