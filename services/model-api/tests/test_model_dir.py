"""Reading a model directory: what is served without lineage, and the refusals, each naming the file."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from soil_model_api.errors import ModelLoadError, UntrustedModel
from soil_model_api.model_dir import load_from_dir


def test_a_model_without_soilci_json_is_served_without_lineage(model_dir, benchmark, tmp_path):
    copy = shutil.copytree(model_dir, tmp_path / "model")
    (copy / "soilci.json").unlink()

    loaded = load_from_dir(copy)

    info = loaded.info
    assert (info.name, info.version, info.git_revision, info.data_version, info.target) == (None,) * 5
    assert info.metrics == {} and info.aliases == []
    assert info.bands == benchmark.bands


@pytest.mark.parametrize("edit,field", [
    (lambda meta: meta.pop("target"), "target: Field required"),
    (lambda meta: meta.update(data_version=["md5"]), "data_version: Input should be a valid string"),
    (lambda meta: meta.update(colour="blue"), "colour: Extra inputs are not permitted"),
], ids=["missing field", "wrong type", "unknown field"])
def test_a_malformed_soilci_json_is_refused_naming_the_file_and_field(model_dir, tmp_path, edit, field):
    copy = shutil.copytree(model_dir, tmp_path / "model")
    meta = json.loads((copy / "soilci.json").read_text())
    edit(meta)
    (copy / "soilci.json").write_text(json.dumps(meta))

    with pytest.raises(ModelLoadError) as refused:
        load_from_dir(copy)

    assert str(copy / "soilci.json") in str(refused.value)
    assert field in str(refused.value)
    assert refused.value.exit_code == 2


def test_a_model_without_signature_is_refused_naming_the_file(model_dir, tmp_path):
    copy = shutil.copytree(model_dir, tmp_path / "model")
    mlmodel = (copy / "MLmodel").read_text()
    (copy / "MLmodel").write_text(mlmodel.split("signature:")[0])

    with pytest.raises(ModelLoadError, match="MLmodel: the model has no input signature"):
        load_from_dir(copy)


def test_soilci_json_bands_must_match_the_signature(model_dir, tmp_path):
    copy = shutil.copytree(model_dir, tmp_path / "model")
    meta = json.loads((copy / "soilci.json").read_text())
    meta["bands"] = meta["bands"][:-1] if meta.get("bands") else ["wl_1"]
    (copy / "soilci.json").write_text(json.dumps(meta))

    with pytest.raises(ModelLoadError, match="soilci.json: 'bands' differ"):
        load_from_dir(copy)


@pytest.mark.parametrize("fmt", ["pickle", "cloudpickle"])
def test_pickle_models_are_refused_before_their_file_is_read(model_dir, tmp_path, fmt):
    copy = shutil.copytree(model_dir, tmp_path / "model")
    text = re.sub(r"serialization_format: \w+", f"serialization_format: {fmt}", (copy / "MLmodel").read_text())
    (copy / "MLmodel").write_text(text.replace("pickled_model: model.skops", "pickled_model: model.pkl"))
    (copy / "model.pkl").write_bytes(b"not even a pickle")  # never opened

    with pytest.raises(UntrustedModel, match=f"refusing to load a '{fmt}' model") as caught:
        load_from_dir(copy)
    assert caught.value.exit_code == 5


@pytest.mark.parametrize("edit,field", [
    (lambda domain: domain.update(mean=domain["mean"][:-1]), "mean and every component need"),
    (lambda domain: domain.update(flag_confidence=0.5), "flag_confidence 0.5 has no entry in limits"),
    (lambda domain: domain.pop("intervals"), "intervals: Field required"),
])
def test_a_malformed_domain_json_is_refused_naming_the_file_and_field(model_dir, tmp_path, edit, field):
    copy = shutil.copytree(model_dir, tmp_path / "model")
    domain = json.loads((copy / "domain.json").read_text())
    edit(domain)
    (copy / "domain.json").write_text(json.dumps(domain))

    with pytest.raises(ModelLoadError) as err:
        load_from_dir(copy)

    assert "domain.json" in str(err.value) and field in str(err.value)


def test_a_domain_of_another_feature_space_fails_the_self_check(model_dir, tmp_path):
    from soil_model_api.served_model import run_self_check

    copy = shutil.copytree(model_dir, tmp_path / "model")
    domain = json.loads((copy / "domain.json").read_text())
    domain.update(n_features=3, mean=[0.0] * 3, components=[[1.0, 0.0, 0.0]], score_variances=[1.0])
    (copy / "domain.json").write_text(json.dumps(domain))

    with pytest.raises(ModelLoadError, match="domain.json describes 3 preprocessed features"):
        run_self_check(load_from_dir(copy))
