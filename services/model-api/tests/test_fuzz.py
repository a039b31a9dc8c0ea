"""Fuzzing: schema-driven requests (schemathesis, the service's own OpenAPI) and random bodies never give a 5xx."""

from __future__ import annotations

import json

import hypothesis.strategies as st
import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from soil_model_api.problems import InvalidRequest
from soil_model_api.validation import BandSchema

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_schema_driven_requests_never_get_a_server_error(few_band_service, mode):
    """Requests generated from the live service's own OpenAPI document, valid and deliberately invalid.

    The service runs a real model of 21 bands: the code paths are those of the 830-band model, while
    generating each request costs a fortieth.
    """
    # Invalid data must be rejected with the documented codes only: 422, 413 for a batch too large,
    # 415 for a body that is not JSON.
    config = SchemathesisConfig.from_dict(
        {"checks": {"negative_data_rejection": {"expected-statuses": ["413", "415", "422"]}}})
    api = schemathesis.openapi.from_url(f"{few_band_service.url}/openapi.json", config=config)
    operations = [result.ok() for result in api.get_all_operations()]
    assert {op.label for op in operations} >= {"POST /v1/predict", "GET /v1/model"}
    checks = CHECKS
    if mode is GenerationMode.NEGATIVE:  # only the predict body can be made invalid
        operations = [op for op in operations if op.method.upper() == "POST"]
        checks = CHECKS + [negative_data_rejection]
    for operation in operations:
        @given(case=operation.as_strategy(generation_mode=mode))
        # Bounded and repeatable: a fixed number of examples from a fixed seed, no example database.
        @settings(max_examples=60 if operation.method.upper() == "POST" else 5, deadline=None,
                  suppress_health_check=list(HealthCheck), database=None, derandomize=True)
        def call(case):
            case.call_and_validate(checks=checks, timeout=30)

        call()


BANDS = ["wl_350", "wl_352", "wl_353", "wl_355"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.sampled_from([*BANDS, "x"]), inner, max_size=5),
    max_leaves=20,
)


@given(doc=st.dictionaries(st.sampled_from(["spectra", "x"]), json_values, max_size=2) | json_values)
@settings(max_examples=300, deadline=None, database=None, derandomize=True)
def test_any_json_body_is_either_a_finite_band_matrix_or_a_named_rejection(doc):
    band_schema = BandSchema(BANDS, max_batch=3)
    body = json.dumps(doc, allow_nan=True).encode()
    try:
        values = band_schema.parse(body)
    except InvalidRequest as exc:
        assert exc.status in (413, 422)
        assert all(err["loc"][0] == "body" and err["msg"] for err in exc.errors)
        return
    assert values.dtype == np.float64 and values.shape[1] == len(BANDS)
    assert np.isfinite(values).all()
    assert 1 <= values.shape[0] <= 3


@given(keys=st.lists(st.sampled_from(BANDS), min_size=4, max_size=6),
       values=st.lists(st.floats(0.5, 99.0), min_size=6, max_size=6), top_twice=st.booleans())
@settings(max_examples=200, deadline=None, database=None, derandomize=True)
def test_a_body_with_a_repeated_key_is_never_accepted(keys, values, top_twice):
    """Whatever key repeats, in a spectrum or at the top, the body is refused; when nothing else is
    wrong (every band present), the repeated key is what the error names."""
    pairs = ", ".join(f'"{k}": {v!r}' for k, v in zip(keys, values, strict=False))
    spectrum = "{" + pairs + "}"
    body = ('{"spectra": [[1.0, 2.0, 3.0, 4.0]], ' if top_twice else "{") + f'"spectra": [{spectrum}]}}'
    repeated = len(set(keys)) < len(keys)
    try:
        BandSchema(BANDS, max_batch=3).parse(body.encode())
    except InvalidRequest as exc:
        named = {e["loc"][-1] for e in exc.errors if e["type"] == "duplicate_key"}
        if set(keys) == set(BANDS):
            assert named == {k for k in keys if keys.count(k) > 1} | ({"spectra"} if top_twice else set())
        return
    assert not repeated and not top_twice and sorted(keys) == sorted(BANDS)
