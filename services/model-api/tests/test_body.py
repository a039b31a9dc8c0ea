"""body and validation: what reaches the parser, and what the parser may build (the app in process)."""

from __future__ import annotations

import asyncio
import json
import tracemalloc

import httpx
import numpy as np
import pytest

from soil_model_api.app import create_app
from soil_model_api.config import Settings
from soil_model_api.domain import DomainJudge
from soil_model_api.model_dir import load_from_dir
from soil_model_api.problems import InvalidRequest
from soil_model_api.validation import BandSchema, body_limit

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def loaded(model_dir):
    return load_from_dir(model_dir)


def app_for(loaded, **settings):
    return create_app(Settings(model_dir=loaded.info.source, **settings), model=loaded)


def call(app, *requests: dict) -> list[httpx.Response]:
    """Send the requests concurrently to the app in process; each dict holds httpx.post keywords."""
    async def run():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api",
                                     timeout=60) as client:
            async def post(request: dict) -> httpx.Response:
                request = dict(request)
                await asyncio.sleep(request.pop("after", 0))  # seconds before sending, to order arrivals
                return await client.post("/v1/predict", **request)

            return await asyncio.gather(*(post(r) for r in requests))

    return asyncio.run(run())


def one_spectrum(benchmark) -> bytes:
    return json.dumps({"spectra": benchmark.spectra[:1].tolist()}).encode()


@pytest.mark.parametrize("headers,fragment", [
    ({"Content-Type": "text/plain"}, "Content-Type 'text/plain'"),
    ({"Content-Type": "application/x-www-form-urlencoded"}, "Content-Type 'application/x-www-form-urlencoded'"),
    ({"Content-Type": "multipart/form-data; boundary=x"}, "multipart/form-data"),
    ({}, "no Content-Type"),
    ({"Content-Type": "application/json; charset=utf-16"}, "charset 'utf-16'"),
    ({"Content-Type": "application/json", "Content-Encoding": "gzip"}, "Content-Encoding 'gzip'"),
], ids=["text", "form", "multipart", "none", "utf-16", "gzip"])
def test_a_body_that_is_not_plain_json_is_415_and_never_parsed(loaded, benchmark, headers, fragment):
    # The cases a browser can send cross-site without a CORS preflight are among them (text/plain, form).
    (resp,) = call(app_for(loaded), {"content": one_spectrum(benchmark), "headers": headers})

    assert resp.status_code == 415, resp.text
    detail = resp.json()["detail"][0]
    assert detail["loc"] == ["header", "content-type"]
    assert fragment in detail["msg"]
    assert resp.headers["connection"] == "close"


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=UTF-8",
                                          "Application/JSON", "application/merge-patch+json"])
def test_json_media_types_are_accepted(loaded, benchmark, content_type):
    (resp,) = call(app_for(loaded), {"content": one_spectrum(benchmark), "headers": {"Content-Type": content_type}})

    assert resp.status_code == 200, resp.text
    np.testing.assert_allclose(resp.json()["predictions"], benchmark.expected[:1], rtol=0, atol=1e-9)


def test_the_body_limit_is_derived_from_the_batch_size_and_fits_a_pretty_printed_full_batch(loaded, benchmark):
    """The derived limit is enough for max_batch spectra by band name, indented, at 17 significant digits."""
    max_batch = 20
    app = app_for(loaded, max_batch=max_batch)
    limit = app.state.serving.schema.body_limit
    rows = benchmark.spectra[:max_batch] * (1 + 1e-15)  # full-precision reprs, ~18 characters each
    full = json.dumps({"spectra": [dict(zip(benchmark.bands, r.tolist(), strict=True)) for r in rows]},
                      indent=2).encode()
    over = json.dumps({"spectra": benchmark.spectra[:1].tolist()}).encode() + b" " * limit

    ok, too_long = call(app, {"content": full, "headers": JSON}, {"content": over, "headers": JSON})

    assert limit == body_limit(benchmark.bands, max_batch) < 2 * len(full)
    assert ok.status_code == 200, ok.text
    assert too_long.status_code == 413
    assert f"above the limit of {limit} bytes (MODEL_API_MAX_BATCH={max_batch} spectra of " in too_long.text


def test_an_explicit_body_limit_overrides_the_derived_one(loaded, benchmark):
    app = app_for(loaded, max_body_bytes=4096)
    body = one_spectrum(benchmark)

    (resp,) = call(app, {"content": body, "headers": JSON})

    assert len(body) > 4096 and resp.status_code == 413
    assert "MODEL_API_MAX_BODY_BYTES" in resp.json()["detail"][0]["msg"]


def streamed(body: bytes, chunk: int = 1 << 16):
    async def chunks():
        for i in range(0, len(body), chunk):
            yield body[i:i + chunk]
    return chunks()


# The reproducers' bodies (api_bad_requests): 3 bytes of "[]," or 4 of "1.0," became ~64 or ~32 bytes
# of Python objects each, so a body within the byte limit could still exhaust memory when parsed.
AMPLIFIERS = {
    "empty arrays": lambda n: b'{"spectra": [[' + b"[]," * n + b"[]]]}",
    "empty objects": lambda n: b'{"spectra": [[' + b"{}," * n + b"{}]]}",
    "one long spectrum": lambda n: b'{"spectra": [[' + b"1.0," * n + b"1.0]]}",
    "deep nesting": lambda n: b'{"spectra": ' + b"[" * n + b"]" * n + b"}",
}


@pytest.mark.parametrize("name", list(AMPLIFIERS))
def test_bodies_that_would_parse_into_many_objects_are_413_before_parsing(loaded, name):
    app = app_for(loaded)
    limit = app.state.serving.schema.body_limit
    body = AMPLIFIERS[name]((limit - 100) // 4)
    assert len(body) <= limit

    tracemalloc.start()
    try:
        (resp,) = call(app, {"content": streamed(body), "headers": JSON})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert resp.status_code == 413, resp.text[:300]
    assert "refused before parsing" in resp.json()["detail"][0]["msg"]
    # The body itself and the client's copy; parsing it would have taken 8-20 times its size.
    assert peak < 3 * len(body) + 20 * 2**20, f"peak {peak / 2**20:.0f} MiB for a {len(body) / 2**20:.0f} MiB body"


def test_near_misses_keep_their_precise_errors(loaded, benchmark):
    """Within the count bounds the body is parsed, so a batch one too big or a spectrum too long is named."""
    app = app_for(loaded, max_batch=5)
    n = len(benchmark.bands)
    six = json.dumps({"spectra": benchmark.spectra[:6].tolist()}).encode()
    long_row = json.dumps({"spectra": [benchmark.spectra[0].tolist() * 2]}).encode()

    batch, row = call(app, {"content": six, "headers": JSON}, {"content": long_row, "headers": JSON})

    assert batch.status_code == 413 and "batch of 6 spectra is above the limit of 5" in batch.text
    assert row.status_code == 422 and f"got {2 * n}" in row.text


def by_name(benchmark, i: int = 0) -> str:
    return json.dumps(dict(zip(benchmark.bands, benchmark.spectra[i].tolist(), strict=True)))


@pytest.mark.parametrize("case", ["band in an object", "band in the second object", "spectra", "both"])
def test_a_key_given_twice_is_422_naming_it(loaded, benchmark, case):
    band = benchmark.bands[0]
    repeated_band = by_name(benchmark)[:-1] + f', "{band}": 99.0}}'
    row = json.dumps(benchmark.spectra[0].tolist())
    body = {
        "band in an object": f'{{"spectra": [{repeated_band}]}}',
        "band in the second object": f'{{"spectra": [{by_name(benchmark, 1)}, {repeated_band}]}}',
        "spectra": f'{{"spectra": [[1.0]], "spectra": [{row}]}}',
        "both": f'{{"spectra": [[1.0]], "spectra": [{repeated_band}]}}',
    }[case]
    expected = {"band in an object": [["body", "spectra", 0, band]],
                "band in the second object": [["body", "spectra", 1, band]],
                "spectra": [["body", "spectra"]],
                "both": [["body", "spectra"], ["body", "spectra", 0, band]]}[case]

    (resp,) = call(app_for(loaded), {"content": body.encode(), "headers": JSON})

    assert resp.status_code == 422, resp.text[:300]
    detail = resp.json()["detail"]
    assert [d["loc"] for d in detail] == expected
    assert all(d["type"] == "duplicate_key" and "given more than once" in d["msg"] for d in detail)


def test_band_names_with_quotes_and_commas_still_parse_and_catch_duplicates():
    schema = BandSchema(['b"1', "b,2", "b[3"], max_batch=2)
    row = {'b"1': 1.0, "b,2": 2.0, "b[3": 3.0}

    values = schema.parse(json.dumps({"spectra": [row, [4.0, 5.0, 6.0]]}).encode())
    with pytest.raises(InvalidRequest) as err:
        schema.parse((json.dumps({"spectra": [row]})[:-3] + ', "b,2": 7.0}]}').encode())

    np.testing.assert_array_equal(values, [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert err.value.errors[0]["loc"] == ["body", "spectra", 0, "b,2"]


def test_a_body_that_stops_arriving_is_408(loaded, benchmark):
    app = app_for(loaded, body_timeout_seconds=0.5)
    body = one_spectrum(benchmark)

    async def stalled():
        yield body[:100]
        await asyncio.sleep(30)
        yield body[100:]

    (resp,) = call(app, {"content": stalled(), "headers": JSON})

    assert resp.status_code == 408
    assert "MODEL_API_BODY_TIMEOUT_SECONDS" in resp.json()["detail"][0]["msg"]
    assert resp.headers["connection"] == "close"


def test_large_bodies_wait_for_a_free_slot_and_get_503_when_none_frees_in_time(loaded, benchmark):
    # One slot and a 1 s budget: A stalls in the slot until 1.0 s; B (sent at 0.3 s) gets it then and
    # stalls in it until 2.0 s; C (sent at 0.6 s) waits until 1.6 s and is told to retry. Small
    # bodies never queue.
    app = app_for(loaded, body_memory_bytes=2**20, body_timeout_seconds=1.0)
    assert app.state.serving.bodies.slots == 1
    large = json.dumps({"spectra": benchmark.spectra[:20].tolist()}).encode()

    async def stalled():
        yield large[:1000]
        await asyncio.sleep(30)

    a, b, c, small = call(app, {"content": stalled(), "headers": JSON},
                          {"content": stalled(), "headers": JSON, "after": 0.3},
                          {"content": large, "headers": JSON, "after": 0.6},
                          {"content": one_spectrum(benchmark), "headers": JSON, "after": 0.6})

    assert (a.status_code, b.status_code) == (408, 408)
    assert c.status_code == 503 and c.headers["retry-after"] == "1"
    assert "large bodies are being read" in c.json()["detail"][0]["msg"]
    assert small.status_code == 200
    (after,) = call(app, {"content": large, "headers": JSON})  # the slot is free again
    assert after.status_code == 200


def test_values_beyond_any_scale_are_422_naming_the_spectrum(loaded, benchmark):
    """The reproducer's 1e308 spectrum once got a 200 with a prediction of -1605."""
    n = len(benchmark.bands)
    body = b'{"spectra": [' + json.dumps(benchmark.spectra[0].tolist()).encode() + b", [1e308" + b",1e308" * (n - 1) + b"]]}"

    (resp,) = call(app_for(loaded), {"content": body, "headers": JSON})

    assert resp.status_code == 422
    detail = resp.json()["detail"]
    assert [d["loc"] for d in detail] == [["body", "spectra", 1]]
    assert "outside every reflectance or absorbance scale" in detail[0]["msg"]


def test_a_model_without_a_scale_refuses_values_outside_every_scale():
    judge = DomainJudge(None, None, "SOC_target", "%")
    plausible = np.full((1, 4), 40.0)

    judge.check_scale(plausible)  # any scale's values pass
    with pytest.raises(InvalidRequest) as err:
        judge.check_scale(np.vstack([plausible, [[0.3, 1e308, 0.3, 0.3]]]))

    assert err.value.status == 422
    assert err.value.errors[0]["loc"] == ["body", "spectra", 1]
    assert "outside every reflectance or absorbance scale" in err.value.errors[0]["msg"]
