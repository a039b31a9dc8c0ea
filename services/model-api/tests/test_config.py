"""Choosing the model source: exactly one of MODEL_URI, MODEL_DIR and MODEL_API_REGISTERED_FILE.

A bad register record is a usage error (exit 2) naming the file and the field, before any port opens.
"""

from __future__ import annotations

import json

import pytest

from soil_contracts.records import RegisteredVersion

RECORD = {"name": "soil-model", "version": "7", "alias": "staging", "uri": "models:/soil-model/7", "run_id": "r1"}


@pytest.mark.parametrize("env,fragment", [
    ({}, "set MODEL_URI"),
    ({"MODEL_URI": "models:/soil-soc@staging", "MODEL_DIR": "/models/model"}, "both set"),
    ({"MODEL_URI": "/models/model"}, "error: MODEL_URI: "),
    ({"MODEL_DIR": "/m", "MODEL_API_MAX_BATCH": "0"}, "error: MODEL_API_MAX_BATCH: "),
], ids=["no source", "two sources", "path as uri", "bad batch limit"])
def test_serve_exits_2_naming_the_variable_when_misconfigured(cli, capsys, env, fragment):
    assert cli(["serve"], env) == 2
    assert fragment in capsys.readouterr().err


@pytest.mark.parametrize("content,fragment", [
    (None, "register record not found"),
    ("{not json", "register record is not valid UTF-8 JSON"),
    ({k: v for k, v in RECORD.items() if k != "run_id"}, "register record: run_id: Field required"),
    ({**RECORD, "version": "seven"}, "register record: version: 'seven' is not a registry version number"),
    ({**RECORD, "name": "a/b", "uri": "models:/a/b/7"}, "register record: name: 'a/b'"),
    ({**RECORD, "uri": "models:/soil-model@staging"}, "register record: uri: 'models:/soil-model@staging' is not"),
], ids=["missing", "not json", "no run_id", "version not a number", "name with a slash", "uri an alias"])
@pytest.mark.parametrize("verb", ["check", "serve"])
def test_a_bad_register_record_exits_2_naming_the_file_and_field(cli, capsys, tmp_path, verb, content,
                                                                 fragment):
    path = tmp_path / "registered.json"
    if content is not None:
        path.write_text(content if isinstance(content, str) else json.dumps(content))

    assert cli([verb], {"MODEL_API_REGISTERED_FILE": str(path)}) == 2

    err = capsys.readouterr().err
    assert f"soil-model-api {verb}: error: MODEL_API_REGISTERED_FILE: {path}: " in err
    assert fragment in err


@pytest.mark.parametrize("sources,fragment", [
    (("MODEL_DIR", "MODEL_API_REGISTERED_FILE"), "MODEL_DIR (/models/model) and MODEL_API_REGISTERED_FILE "),
    (("MODEL_URI", "MODEL_API_REGISTERED_FILE"), "MODEL_URI (models:/soil-model@staging) and "),
    (("MODEL_URI", "MODEL_DIR", "MODEL_API_REGISTERED_FILE"), "are all set"),
], ids=["dir and record", "uri and record", "all three"])
def test_a_register_record_beside_another_source_exits_2_naming_them(cli, capsys, tmp_path, sources,
                                                                    fragment):
    record = RegisteredVersion.parse(RECORD).save(tmp_path / "registered.json")
    values = {"MODEL_URI": "models:/soil-model@staging", "MODEL_DIR": "/models/model",
              "MODEL_API_REGISTERED_FILE": str(record)}

    assert cli(["check"], {var: values[var] for var in sources}) == 2

    err = capsys.readouterr().err
    assert fragment in err
    assert "set one of MODEL_URI, MODEL_DIR, MODEL_API_REGISTERED_FILE" in err


def test_no_source_names_all_three_variables(cli, capsys):
    assert cli(["check"], {}) == 2

    err = capsys.readouterr().err
    assert all(var in err for var in ("MODEL_URI", "MODEL_DIR", "MODEL_API_REGISTERED_FILE"))
