"""publish-image and bump refuse bad input with exit 2 and a message naming it, before Docker or git work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from soilci.cli import main
from soilci.delivery.gitops import ImageRef
from soilci.delivery.publish import image_tag, stage_model

DIGEST = "sha256:" + "c" * 64


def publish(*args: str, registry: str | None = "127.0.0.1:1") -> int:
    """Run ``soilci publish-image`` with a fixed git revision (and an unreachable registry)."""
    extra = ["--registry", registry] if registry else []
    return main(["publish-image", *args, *extra, "--git-revision", "0123456789ab"])


@pytest.fixture
def model_dir(tmp_path) -> Path:
    """The files publish-image looks at in an MLflow model directory (contents are not loaded)."""
    path = tmp_path / "model"
    path.mkdir()
    (path / "MLmodel").write_text("flavors: {}\n")
    (path / "soilci.json").write_text(json.dumps({"name": "soil-carbon", "version": None}))
    return path


def test_image_tag_names_the_git_revision_and_the_model_version():
    assert image_tag("0123456789abcdef0123456789abcdef01234567", "7") == "0123456789ab-v7"
    assert image_tag("0123456789abcdef0123456789abcdef01234567-dirty", "12") == "0123456789ab-dirty-v12"


def test_image_references_split_like_kustomize_edit_set_image():
    ref = ImageRef.parse(f"127.0.0.1:5000/team/soil-model-api:0123456789ab-v7@{DIGEST}")
    assert (ref.name, ref.tag, ref.digest) == (
        "127.0.0.1:5000/team/soil-model-api",
        "0123456789ab-v7",
        DIGEST,
    )
    assert ImageRef.parse("127.0.0.1:5000/soil-model-api").tag is None  # the port is not a tag
    assert str(ref) == f"127.0.0.1:5000/team/soil-model-api:0123456789ab-v7@{DIGEST}"


def test_staged_model_carries_the_registered_version_and_is_world_readable(model_dir, tmp_path):
    model_dir.joinpath("soilci.json").chmod(0o600)
    stage_model(model_dir, tmp_path / "ctx", model_name="soil-carbon", model_version="7", git_revision="abc")
    meta = json.loads((tmp_path / "ctx" / "soilci.json").read_text())
    assert (meta["name"], meta["version"], meta["git_revision"]) == ("soil-carbon", "7", "abc")
    assert (tmp_path / "ctx" / "soilci.json").stat().st_mode & 0o777 == 0o644


def test_publish_refuses_a_model_dir_recording_another_version(model_dir, capsys):
    model_dir.joinpath("soilci.json").write_text(json.dumps({"name": "soil-carbon", "version": "6"}))
    rc = publish("--model-version", "7", "--model-dir", str(model_dir))
    assert rc == 2
    assert "soilci.json: records version 6, but --model-version is 7" in capsys.readouterr().err


def test_publish_refuses_a_directory_that_is_not_an_mlflow_model(tmp_path, capsys):
    rc = publish("--model-version", "7", "--model-dir", str(tmp_path))
    assert rc == 2
    assert "not an MLflow model directory (no MLmodel file)" in capsys.readouterr().err


def test_publish_needs_a_registry(model_dir, capsys, monkeypatch):
    monkeypatch.delenv("REGISTRY", raising=False)
    monkeypatch.delenv("SOILCI_REGISTRY", raising=False)
    rc = publish("--model-version", "7", "--model-dir", str(model_dir), registry=None)
    assert rc == 2
    assert "no registry: pass --registry or set REGISTRY" in capsys.readouterr().err


def test_publish_reads_name_and_version_from_the_register_record(tmp_path, model_dir, capsys):
    record = tmp_path / "registered.json"
    record.write_text(json.dumps({"name": "soil-carbon", "version": "9"}))
    model_dir.joinpath("soilci.json").write_text(json.dumps({"name": "soil-carbon", "version": "8"}))
    rc = publish("--registered", str(record), "--model-dir", str(model_dir))
    assert rc == 2
    assert "records version 8, but --model-version is 9" in capsys.readouterr().err


def test_bump_needs_model_version_when_the_tag_does_not_carry_it(tmp_path, capsys):
    rc = main(
        [
            "bump",
            "--manifests-repo",
            str(tmp_path / "none.git"),
            "--image",
            f"127.0.0.1:5000/soil-model-api:latest@{DIGEST}",
        ]
    )
    assert rc == 2
    assert "pass --model-version and --git-revision" in capsys.readouterr().err
