"""Bad input fails with exit 2 and a message naming the params key or the file."""

from __future__ import annotations

import shutil
import socket

import pandas as pd
import pytest
import yaml

from soil_trainer.cli import main
from soil_trainer.config import get_settings


@pytest.fixture
def project(tmp_path, prepared_data, repo_root, monkeypatch):
    """A params.yaml and data copy; MLflow points at a closed port, so no test reaches a store."""
    shutil.copytree(prepared_data, tmp_path / "data")
    shutil.copy(repo_root / "params.yaml", tmp_path / "params.yaml")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{sock.getsockname()[1]}")
    monkeypatch.setenv("SOILCI_TRACKING_RETRIES", "1")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def set_train(project, **changes) -> None:
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        node = params["train"]
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node[key]
        node[leaf] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def train(project) -> int:
    return main(["train", "--params", str(project / "params.yaml"), "--data-dir", str(project / "data"),
                 "--model-dir", str(project / "models" / "model")])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model": "xgboost"}, "train.model: Input should be 'pls', 'ridge' or 'random_forest' (got 'xgboost')"),
        ({"pls__max_components": "ten"}, "train.pls.max_components: Input should be a valid integer (got 'ten')"),
        ({"pls__max_components": 10.5}, "train.pls.max_components: Input should be a valid integer"),
        ({"family__snv__snv": "yes"}, "train.family.snv.snv: Input should be a valid boolean"),
        ({"family__sg1__savgol_window": 8}, "train.family.sg1: Value error, savgol_window must be odd"),
        ({"family__abs": {"absorbance": True, "scale": True}}, "train.family.abs.scale: Extra inputs"),
        ({"family__abs": {}}, "train.family: Value error, members 'plain' and 'abs' are the same pipeline"),
        ({"family__Abs-2": {}}, "train.family.Abs-2.[key]: String should match pattern"),
        ({"family": {}}, "train.family: Dictionary should have at least 1 item"),
        ({"select_tolerance_se": -1.0}, "train.select_tolerance_se: Input should be greater than or equal to 0"),
        ({"cv_repeats": 0}, "train.cv_repeats: Input should be greater than or equal to 1"),
        ({"family": {f"m{i}": {"resample_step": i} for i in range(13)}}, "train.family: Dictionary should have at most 12"),
        ({"pls__n_comp": 5}, "train.pls.n_comp: Extra inputs are not permitted"),
    ],
)
def test_bad_train_params_exit_2_naming_the_key(project, capsys, changes, message):
    set_train(project, **changes)
    assert train(project) == 2
    assert message in capsys.readouterr().err
    assert not (project / "models").exists()


def test_benchmark_overlapping_the_training_set_is_refused(project, capsys):
    benchmark = pd.read_parquet(project / "data" / "benchmark.parquet")
    training = pd.read_parquet(project / "data" / "training.parquet")
    leaked = pd.concat([training, benchmark.iloc[:4]], ignore_index=True)
    leaked.to_parquet(project / "data" / "training.parquet", index=False)
    assert train(project) == 2
    err = capsys.readouterr().err
    assert "benchmark.parquet: 4 benchmark samples are also in training.parquet" in err
    assert "must never be trained on" in err


def test_missing_band_values_are_an_error_not_imputed(project, capsys):
    training = pd.read_parquet(project / "data" / "training.parquet")
    training.loc[2, "wl_1000"] = float("nan")
    training.to_parquet(project / "data" / "training.parquet", index=False)
    assert train(project) == 2
    assert "training.parquet: 1 rows have missing or infinite band values" in capsys.readouterr().err


def test_evaluate_without_a_trained_model_names_the_directory(project, capsys):
    args = ["evaluate", "--params", str(project / "params.yaml"), "--model-dir", str(project / "nothing"),
            "--benchmark", str(project / "data" / "benchmark.parquet"), "--metrics", str(project / "m.json"),
            "--predictions", str(project / "p.csv"), "--plots-dir", str(project / "reports")]
    assert main(args) == 2
    assert "nothing: not a trained model directory" in capsys.readouterr().err


def test_a_bad_model_name_is_refused_naming_the_key(project, capsys):
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["register"]["model_name"] = "soil carbon!"
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    assert train(project) == 2
    assert "register.model_name: String should match pattern" in capsys.readouterr().err
    assert not (project / "models").exists()


def test_constant_targets_are_refused_not_trained_on(project, capsys):
    training = pd.read_parquet(project / "data" / "training.parquet")
    training["SOC_target"] = 1.5
    training.to_parquet(project / "data" / "training.parquet", index=False)
    assert train(project) == 2
    assert "every training row has the same SOC_target; nothing to learn" in capsys.readouterr().err
