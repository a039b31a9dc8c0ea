"""Loading from a real MLflow registry, by alias or by a register record: the version is pinned, its lineage shown."""

from __future__ import annotations

import json
import os
import socket
import threading
import time

import numpy as np

from soil_contracts.model_file import DIGEST_TAG, model_digest
from soil_contracts.records import RegisteredVersion
from tests.support import free_port

REGISTERED = "soil-soc-model-api-test"  # its own name, so other tests' versions of soil-soc stay apart


def register(tracking_uri: str, model_dir, tags: dict[str, str]) -> RegisteredVersion:
    """Log the model directory as a run's artifacts, register it, tag the version, move alias staging.

    The version carries the files' digest, as ``soil-trainer register`` records it.

    Returns what ``soil-trainer register --out`` would record for that version.

    Only the client API is used, so the process-wide MLflow tracking URI of other tests is left alone.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name("model-api-tests")
    experiment_id = experiment.experiment_id if experiment else client.create_experiment("model-api-tests")
    run = client.create_run(experiment_id)
    client.log_artifacts(run.info.run_id, str(model_dir), artifact_path="model")
    client.set_terminated(run.info.run_id)
    try:
        client.create_registered_model(REGISTERED)
    except MlflowException:  # already there from an earlier test in this session
        pass
    version = client.create_model_version(REGISTERED, source=f"{run.info.artifact_uri}/model",
                                          run_id=run.info.run_id,
                                          tags={DIGEST_TAG: model_digest(model_dir), **tags}).version
    client.set_registered_model_alias(REGISTERED, "staging", version)
    return RegisteredVersion(name=REGISTERED, version=str(version), alias="staging",
                             uri=f"models:/{REGISTERED}/{version}", run_id=run.info.run_id)


def test_alias_uri_serves_that_version_with_registry_lineage(mlflow_server, model_dir, in_process, benchmark,
                                                             tmp_path):
    """In process (the ``in_process`` fixture); a ``serve`` loading a registry version over HTTP runs in the
    model-api image (tests/test_image_contents.py) and in the compose stack (tests/compose/test_compose_stack.py)."""
    tags = {"git_revision": "3f2a9c1", "data_version": "md5:abc", "metric.rmse": "0.42", "metric.r2": "0.81"}
    version = register(mlflow_server, model_dir, tags).version

    client = in_process({"MODEL_URI": f"models:/{REGISTERED}@staging", "MLFLOW_TRACKING_URI": mlflow_server,
                         "MODEL_API_SLOT": "blue", "MODEL_API_CACHE_DIR": str(tmp_path)}, timeout=120)
    info = client.get("/v1/model").json()
    resp = client.post("/v1/predict", json={"spectra": benchmark.spectra.tolist()})

    assert (info["name"], info["version"], info["alias"]) == (REGISTERED, version, "staging")
    assert "staging" in info["aliases"]
    assert (info["git_revision"], info["data_version"]) == ("3f2a9c1", "md5:abc")
    assert info["metrics"]["rmse"] == 0.42 and info["metrics"]["r2"] == 0.81
    assert info["slot"] == "blue"
    assert resp.status_code == 200
    assert resp.json()["model_version"] == version
    np.testing.assert_allclose(resp.json()["predictions"], benchmark.expected, rtol=0, atol=1e-9)
    assert not any((tmp_path / "soil-model-api").iterdir()), "the download is removed once loaded"


def test_unknown_alias_leaves_the_service_unready_with_the_registry_error(mlflow_server, in_process):
    client = in_process({"MODEL_URI": f"models:/{REGISTERED}@nonexistent", "MLFLOW_TRACKING_URI": mlflow_server},
                        ready=False)

    for _ in range(150):
        ready = client.get("/readyz")
        if ready.json()["detail"]:
            break
        time.sleep(0.2)
    assert ready.status_code == 503
    assert ready.json()["status"] == "failed"
    assert "nonexistent" in ready.json()["detail"]
    assert client.get("/healthz").status_code == 200


def test_registered_file_serves_its_version_after_the_alias_moved_on(mlflow_server, model_dir, in_process,
                                                                     benchmark, tmp_path):
    record = register(mlflow_server, model_dir, {"git_revision": "5d1e0aa", "data_version": "md5:def"})
    later = register(mlflow_server, model_dir, {"git_revision": "later"})  # staging moves on to this one
    path = record.save(tmp_path / "registered.json")

    client = in_process({"MODEL_API_REGISTERED_FILE": str(path), "MLFLOW_TRACKING_URI": mlflow_server,
                         "MODEL_API_CACHE_DIR": str(tmp_path)}, timeout=120)
    info = client.get("/v1/model").json()
    resp = client.post("/v1/predict", json={"spectra": benchmark.spectra.tolist()})

    assert later.version != record.version
    assert (info["name"], info["version"], info["alias"]) == (REGISTERED, record.version, None)
    assert "staging" not in info["aliases"]
    assert (info["git_revision"], info["data_version"]) == ("5d1e0aa", "md5:def")
    assert info["target"] == "SOC_target"  # from the version's soilci.json
    assert str(path) in info["source"] and f"models:/{REGISTERED}/{record.version}" in info["source"]
    assert resp.status_code == 200
    assert resp.json()["model_version"] == record.version
    np.testing.assert_allclose(resp.json()["predictions"], benchmark.expected, rtol=0, atol=1e-9)


def test_a_version_pinned_by_number_reports_no_alias_beside_the_aliases_it_carries(mlflow_server, model_dir,
                                                                                  in_process, tmp_path):
    """The new-user trial saw ``alias: null`` beside ``aliases: [staging]`` and took it for a bug: a slot pinned
    by version (as GitOps deploys it) was resolved by no alias; ``aliases`` lists those on the version."""
    version = register(mlflow_server, model_dir, {"git_revision": "9b8c7d6"}).version  # staging points here

    client = in_process({"MODEL_URI": f"models:/{REGISTERED}/{version}", "MLFLOW_TRACKING_URI": mlflow_server,
                         "MODEL_API_CACHE_DIR": str(tmp_path)}, timeout=120)
    info = client.get("/v1/model").json()
    described = client.get("/openapi.json").json()["components"]["schemas"]["ModelInfoResponse"]["properties"]

    assert (info["version"], info["alias"], info["aliases"]) == (version, None, ["staging"])
    assert "null when the version was pinned" in described["alias"]["description"]
    assert "whichever way it was resolved" in described["aliases"]["description"]


def test_check_loads_a_registered_file_and_prints_its_version(mlflow_server, model_dir, cli, capsys,
                                                              tmp_path):
    record = register(mlflow_server, model_dir, {})
    path = record.save(tmp_path / "registered.json")
    capsys.readouterr()  # MLflow's own "View run" lines

    code = cli(["check"], {"MODEL_API_REGISTERED_FILE": str(path), "MLFLOW_TRACKING_URI": mlflow_server,
                               "MODEL_API_CACHE_DIR": str(tmp_path)})

    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["model"]["name"], out["model"]["version"]) == (REGISTERED, record.version)
    assert out["self_check"]["ok"] is True


def test_a_record_of_another_registrys_run_exits_2_naming_both_runs(mlflow_server, model_dir, cli,
                                                                   capsys, tmp_path):
    record = register(mlflow_server, model_dir, {})
    path = record.model_copy(update={"run_id": "0" * 32}).save(tmp_path / "registered.json")

    code = cli(["check"], {"MODEL_API_REGISTERED_FILE": str(path), "MLFLOW_TRACKING_URI": mlflow_server})

    err = capsys.readouterr().err
    assert code == 2
    assert f"created by run {record.run_id}, not by run {'0' * 32}" in err
    assert str(path) in err


def test_an_unreachable_registry_exits_3_after_three_attempts_without_its_credentials(cli, monkeypatch, capsys):
    """With MLflow's own defaults this took ~250 s (7 retries, backoff 2); the service bounds them."""
    from soil_model_api.registry import MLFLOW_HTTP_DEFAULTS

    for var in MLFLOW_HTTP_DEFAULTS:  # unset for the test, restored after (the service sets its default)
        monkeypatch.setenv(var, "")
        monkeypatch.delenv(var)
    attempts = []
    with socket.create_server(("127.0.0.1", 0)) as server:  # accepts and hangs up: a registry that never answers
        def hang_up():
            while True:
                try:
                    conn, _ = server.accept()
                except OSError:
                    return
                attempts.append(conn)
                conn.close()

        threading.Thread(target=hang_up, daemon=True).start()
        code = cli(["check"], {"MODEL_URI": f"models:/{REGISTERED}@staging",
                               "MLFLOW_TRACKING_URI": f"http://bot:s3cret@127.0.0.1:{server.getsockname()[1]}"})

    err = capsys.readouterr().err
    assert code == 3
    assert len(attempts) == 1 + int(MLFLOW_HTTP_DEFAULTS["MLFLOW_HTTP_REQUEST_MAX_RETRIES"])
    assert "the MLflow registry did not answer" in err
    assert "s3cret" not in err and "bot:" not in err


def test_an_explicit_mlflow_retry_setting_wins(cli, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")

    code = cli(["check"], {"MODEL_URI": f"models:/{REGISTERED}@staging",
                           "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}"})

    assert code == 3
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"
