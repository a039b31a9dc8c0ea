"""The trainer image: train + evaluate on mounted data with no network, and no DVC in it."""

from __future__ import annotations

import json
import os
import shutil

import pytest

# The verbs in one interpreter, each after the last succeeded (each runs alone in the pipeline's stage containers).
VERBS = "import json, sys; from soil_trainer.cli import main; sys.exit(0 if all(main(a) == 0 for a in json.loads(sys.argv[1])) else 1)"


@pytest.mark.docker
def test_trainer_image_trains_and_evaluates_mounted_data_without_network(
    built_images, docker_client, prepared_data, repo_root, tmp_path
):
    image = built_images["trainer"]
    # The stages import no DVC (soilci runs DVC on the host), so the image carries none of it.
    probe = "import importlib.util as u; print(*(u.find_spec(m) is None for m in ('dvc', 'pygit2', 'dulwich')))"
    assert docker_client.containers.run(image, entrypoint="python", command=["-c", probe],
                                        remove=True).split() == [b"True"] * 3

    work = tmp_path / "work"
    shutil.copytree(prepared_data, work / "data")
    shutil.copy(repo_root / "params.yaml", work / "params.yaml")
    for path in [work, *work.rglob("*")]:  # the image runs as 10001:10001
        os.chmod(path, 0o777 if path.is_dir() else 0o666)
    verbs = [
        ["train", "--params", "params.yaml", "--data-dir", "data", "--model-dir", "models/model"],
        ["evaluate", "--params", "params.yaml", "--model-dir", "models/model", "--benchmark",
         "data/benchmark.parquet", "--metrics", "metrics/metrics.json", "--predictions",
         "metrics/predictions.csv", "--plots-dir", "reports"],
    ]
    docker_client.containers.run(
        image, ["-c", VERBS, json.dumps(verbs)], entrypoint="python",
        volumes={str(work): {"bind": "/work", "mode": "rw"}}, network_mode="none", read_only=True,
        tmpfs={"/tmp": ""}, environment={"SOILCI_GIT_REVISION": "image-test"}, remove=True,
    )
    metrics = json.loads((work / "metrics" / "metrics.json").read_text())
    assert metrics["n_benchmark"] == 92 and 0 < metrics["rmse"] < 1.5
    meta = json.loads((work / "models" / "model" / "soilci.json").read_text())
    assert meta["git_revision"] == "image-test" and meta["run_id"]
    assert (work / "mlruns").is_dir()  # the local MLflow store when MLFLOW_TRACKING_URI is unset
