"""params.yaml as soilci reads it: register.model_name, the one place the model name is set."""

from __future__ import annotations

import pytest

from soilci.cli import main
from soilci.errors import ConfigError
from soilci.params import Params, model_name
from tests.support import REPO_ROOT

IMAGE = "127.0.0.1:5000/soil-model-api:0123456789ab-v7@sha256:" + "a" * 64


def test_the_projects_params_name_the_registered_model():
    assert Params.load(REPO_ROOT / "params.yaml").registration.model_name == "soil-carbon"


def test_an_explicit_name_wins_without_reading_params(tmp_path):
    assert model_name("soil-ph", tmp_path / "absent.yaml") == "soil-ph"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("train: {}\n", "params.yaml: register: Field required"),
        ("register:\n  alias: staging\n", "params.yaml: register.model_name: Field required"),
        ("register:\n  model_name: ''\n", "params.yaml: register.model_name: String should have at least 1"),
        ("register: [\n", "params.yaml: not valid YAML"),
    ],
)
def test_bad_params_are_refused_naming_the_key(tmp_path, text, message):
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        Params.load(tmp_path / "params.yaml")


def test_bump_without_a_model_name_exits_2_naming_the_missing_key(tmp_path, capsys):
    (tmp_path / "params.yaml").write_text("register:\n  alias: staging\n")
    args = ["--image", IMAGE, "--params", str(tmp_path / "params.yaml")]
    assert main(["bump", "--manifests-repo", str(tmp_path / "none.git"), *args]) == 2
    assert "register.model_name: Field required" in capsys.readouterr().err


def test_a_missing_params_file_says_how_to_name_the_model(tmp_path, capsys):
    args = ["--image", IMAGE, "--params", str(tmp_path / "absent.yaml")]
    assert main(["bump", "--manifests-repo", str(tmp_path / "none.git"), *args]) == 2
    assert "absent.yaml: params file not found" in capsys.readouterr().err
