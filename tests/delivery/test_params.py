"""params.yaml as soilci reads it: the model's name is register.model_name, or derived from prepare.target."""

from __future__ import annotations

import pytest

from soilci.cli import main
from soilci.errors import ConfigError
from soilci.params import Params, model_name
from tests.support import REPO_ROOT

IMAGE = "127.0.0.1:5000/soil-model-api:0123456789ab-v7@sha256:" + "a" * 64


def test_the_projects_params_derive_the_registered_model_name_from_the_target():
    params = Params.load(REPO_ROOT / "params.yaml")
    assert params.registration.model_name is None and params.model_name == "soil-soc"


def test_a_named_model_keeps_its_name_whatever_the_target(tmp_path):
    text = (REPO_ROOT / "params.yaml").read_text().replace("target: SOC_target", "target: pH_target")
    (tmp_path / "params.yaml").write_text(text)
    assert Params.load(tmp_path / "params.yaml").model_name == "soil-ph"
    (tmp_path / "params.yaml").write_text(text.replace("model_name: null", "model_name: lab-ph"))
    assert Params.load(tmp_path / "params.yaml").model_name == "lab-ph"


def test_an_explicit_name_wins_without_reading_params(tmp_path):
    assert model_name("soil-ph", tmp_path / "absent.yaml") == "soil-ph"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("train: {}\n", "params.yaml: library: Field required"),
        ("library: {grid: {start: 1, stop: 2, step: 1}}\nprepare: {target: x, unit: y}\n",
         "params.yaml: register: Field required"),
        ("library: {grid: {start: 1, stop: 2, step: 1}}\nprepare: {target: x, unit: y}\nregister:\n  model_name: ''\n",
         "params.yaml: register.model_name: String should have at least 1"),
        ("register: [\n", "params.yaml: not valid YAML"),
    ],
)
def test_bad_params_are_refused_naming_the_key(tmp_path, text, message):
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        Params.load(tmp_path / "params.yaml")


def test_bump_without_the_target_exits_2_naming_the_missing_key(tmp_path, capsys):
    (tmp_path / "params.yaml").write_text("library: {grid: {start: 1, stop: 2, step: 1}}\nregister:\n  alias: x\n")
    args = ["--image", IMAGE, "--params", str(tmp_path / "params.yaml")]
    assert main(["bump", "--manifests-repo", str(tmp_path / "none.git"), *args]) == 2
    assert "prepare: Field required" in capsys.readouterr().err


def test_a_missing_params_file_says_how_to_name_the_model(tmp_path, capsys):
    args = ["--image", IMAGE, "--params", str(tmp_path / "absent.yaml")]
    assert main(["bump", "--manifests-repo", str(tmp_path / "none.git"), *args]) == 2
    assert "absent.yaml: params file not found" in capsys.readouterr().err
