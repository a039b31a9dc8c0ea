"""The drift section of params.yaml: a bad key or value is exit 2 naming the key, nothing written."""

from __future__ import annotations

import pytest

from soil_drift.config import DriftParams, load_params


@pytest.mark.parametrize(("text", "message"), [
    ("drift:\n  bogus: 1\n", "drift.bogus: Extra inputs are not permitted"),
    ("drift:\n  alpha: 2\n", "drift.alpha: must be between 0.0001 and 0.5"),
    # A new user's typo hung the gate for 14 minutes: 1e-300 asked for 10^302 permutations.
    ("drift:\n  alpha: 1.0e-300\n", ("drift.alpha: must be between 0.0001 and 0.5: the gate's family-wise "
                                    "false-positive rate (services/drift/README.md, Params) (got 1e-300)")),
    ("drift:\n  alpha: .nan\n", "drift.alpha: must be between 0.0001 and 0.5"),
    ("drift:\n  on_drift: maybe\n", "drift.on_drift: Input should be 'fail' or 'warn'"),
    ("drift: [1, 2]\n", "drift: expected a mapping"),
    ("drift: {alpha: [\n", "not valid YAML at line"),
])
def test_bad_params_name_the_key(tmp_path, slices, run_bad, text, message):
    params = tmp_path / "params.yaml"
    params.write_text(text)
    code, err = run_bad(*slices, "--params", str(params))
    assert code == 2 and message in err


def test_missing_section_means_defaults(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("train:\n  model: pls\n")
    assert load_params(params) == DriftParams() == load_params(None)
