"""predict_asgi: POST /v1/predict before FastAPI's routing answers exactly as the FastAPI route does.

Each request goes to two apps on the same model: the service as it runs (``PredictMiddleware``) and
the same app with the endpoint left to the FastAPI route (``lean_predict=False``), the reference.
Status, headers and body must be byte-for-byte the same, and so must what the requests leave
behind: Prometheus counters and the live-drift window.
"""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import numpy as np
import pytest

from soil_model_api.app import create_app
from soil_model_api.config import Settings
from soil_model_api.model_dir import load_from_dir
from soil_model_api.problems import InvalidRequest
from soil_model_api.validation import BandSchema

JSON = {"Content-Type": "application/json"}
MAX_BATCH = 5


@pytest.fixture(scope="module")
def loaded(model_dir):
    return load_from_dir(model_dir)


def both_apps(loaded, **settings) -> tuple:
    """(lean, reference) apps on the same model and settings."""
    config = Settings(model_dir=loaded.info.source, max_batch=MAX_BATCH, drift_interval_seconds=0, **settings)
    return create_app(config, model=loaded), create_app(config, model=loaded, lean_predict=False)


def send_all(app, requests: list[dict]) -> list[httpx.Response]:
    """Each request (httpx ``request`` keywords, POST /v1/predict unless given) in turn, in process."""
    async def run():
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://api", timeout=60) as client:
            return [await client.request(**{"method": "POST", "url": "/v1/predict", **r}) for r in requests]

    return asyncio.run(run())


def answer(resp: httpx.Response) -> tuple:
    """What a client sees of a response: status, headers, body."""
    return resp.status_code, sorted(resp.headers.items()), resp.content


def row(values) -> str:
    return json.dumps([float(v) for v in values])


def by_name(bands, values) -> str:
    return json.dumps(dict(zip(bands, [float(v) for v in values], strict=True)))


def cases(benchmark) -> dict[str, dict]:
    """Good and bad requests: httpx keywords for each, named."""
    bands, spectra, n = benchmark.bands, benchmark.spectra, len(benchmark.bands)
    one, two = row(spectra[0]), row(spectra[1])
    first_band = json.dumps(bands[0])
    escaped = '"' + "".join(f"\\u{ord(c):04x}" for c in bands[0]) + '"'  # the same key, every character escaped
    obj = by_name(bands, spectra[0])
    bodies = {
        # accepted (the first 11)
        "one spectrum": f'{{"spectra": [{one}]}}',
        "two spectra": f'{{"spectra": [{one}, {two}]}}',
        "by band name": f'{{"spectra": [{obj}]}}',
        "by band name, keys reversed": '{"spectra": [' + json.dumps(dict(reversed(json.loads(obj).items()))) + "]}",
        "arrays and objects mixed": f'{{"spectra": [{obj}, {two}]}}',
        "pretty-printed": json.dumps({"spectra": spectra[:2].tolist()}, indent=2),
        "integers and exponents": '{"spectra": [[' + ",".join(
            str(int(v)) if i % 3 == 0 else f"{v:.6e}" for i, v in enumerate(np.round(spectra[0]))) + "]]}",
        "full batch": json.dumps({"spectra": spectra[:MAX_BATCH].tolist()}),
        "out of domain": json.dumps({"spectra": (spectra[:3] * np.linspace(0.5, 1.5, spectra.shape[1])).tolist()}),
        "escaped key, not repeated": f'{{"spectr\\u0061": [{one}]}}',
        "escaped band name": '{"spectra": [' + obj.replace(first_band, escaped, 1) + "]}",
        # refused
        "empty": "",
        "whitespace": "  \n ",
        "invalid JSON": '{"spectra": [[0.1,',
        "not an object": "[1, 2]",
        "unknown field": f'{{"spectra": [{one}], "model_uri": "/tmp/x"}}',
        "spectra missing": "{}",
        "spectra not an array": '{"spectra": {"a": 1}}',
        "empty batch": '{"spectra": []}',
        "batch above the limit": json.dumps({"spectra": [spectra[0].tolist()] * (MAX_BATCH + 1)}),
        "too few bands": '{"spectra": [' + row(spectra[0][:-1]) + "]}",
        "too many bands in the second": f'{{"spectra": [{one}, ' + row(np.append(spectra[1], 1.0)) + "]}",
        "spectrum a string": '{"spectra": ["abc"]}',
        "NaN token": '{"spectra": [[NaN' + ", 30.0" * (n - 1) + "]]}",
        "Infinity token": '{"spectra": [[30.0, Infinity' + ", 30.0" * (n - 2) + "]]}",
        "overflow to -Infinity": '{"spectra": [[30.0, 30.0, -1e999' + ", 30.0" * (n - 3) + "]]}",
        "NaN in an object": '{"spectra": [' + obj.replace(f"{first_band}: {float(spectra[0][0])}",
                                                        f"{first_band}: NaN", 1) + "]}",
        "NaN and wrong scale": '{"spectra": [[NaN' + ", 0.3" * (n - 1) + "]]}",
        "string value": '{"spectra": [["30.0"' + ", 30.0" * (n - 1) + "]]}",
        "true": '{"spectra": [[true' + ", 30.0" * (n - 1) + "]]}",
        "false": '{"spectra": [[30.0, false' + ", 30.0" * (n - 2) + "]]}",
        "null": '{"spectra": [[null' + ", 30.0" * (n - 1) + "]]}",
        "nested array": '{"spectra": [[[30.0]' + ", 30.0" * (n - 1) + "]]}",
        "object as a value": '{"spectra": [[{"a": 1, "a": 2}' + ", 30.0" * (n - 1) + "]]}",
        "integer beyond float64": '{"spectra": [[1' + "0" * 400 + ", 30.0" * (n - 1) + "]]}",
        "fraction reflectance": json.dumps({"spectra": (spectra[:2] / 100).tolist()}),
        "absorbance": json.dumps({"spectra": np.log10(100 / spectra[:1]).tolist()}),
        "1e308": f'{{"spectra": [{one}, [1e308' + ", 1e308" * (n - 1) + "]]}",
        "negative": '{"spectra": [[-5.0' + ", 30.0" * (n - 1) + "]]}",
        "unknown and missing bands": '{"spectra": [' + obj.replace(first_band, '"wl_x"', 1) + "]}",
        "spectra twice": f'{{"spectra": [[1.0]], "spectra": [{one}]}}',
        "spectra twice, escaped": f'{{"spectra": [{one}], "spectr\\u0061": [{two}]}}',
        "band twice": '{"spectra": [' + obj[:-1] + f", {first_band}: 99.0}}]}}",
        "band twice, escaped": '{"spectra": [' + obj[:-1] + f", {escaped}: 99.0}}]}}",
        "band twice in the second spectrum": f'{{"spectra": [{one}, ' + obj[:-1] + f", {first_band}: 1.0}}]}}",
        # n values per spectrum in all once nested arrays are flattened (what simdjson's as_buffer does)
        "nested arrays, n values flattened": '{"spectra": [[[], [30.0, 30.0]' + ", 30.0" * (n - 2) + "]]}",
        "n - 1 and n + 1 values": '{"spectra": [' + row(spectra[0][:-1]) + ", " + row(np.append(spectra[1], 1.0))
                                  + "]}",
        "a number beside a spectrum": f'{{"spectra": [{one}, 30.0]}}',
    }
    requests = {name: {"content": body.encode(), "headers": JSON} for name, body in bodies.items()}
    good = bodies["one spectrum"].encode()
    requests.update({
        "text/plain": {"content": good, "headers": {"Content-Type": "text/plain"}},
        "no content type": {"content": good},
        "charset utf-16": {"content": good, "headers": {"Content-Type": "application/json; charset=utf-16"}},
        "gzip": {"content": good, "headers": {**JSON, "Content-Encoding": "gzip"}},
        "json with charset": {"content": good, "headers": {"Content-Type": "application/json; charset=UTF-8"}},
        "+json media type": {"content": good, "headers": {"Content-Type": "application/merge-patch+json"}},
        "streamed in chunks": {"content": chunked(good, 1000), "headers": JSON},
    })
    return requests


def chunked(body: bytes, size: int):
    async def chunks():
        for i in range(0, len(body), size):
            yield body[i:i + size]
    return chunks


def fresh(request: dict) -> dict:
    """A request whose streamed content, if any, starts from the beginning again."""
    content = request.get("content")
    return {**request, "content": content()} if callable(content) else request


def test_every_request_gets_the_routes_answer(loaded, benchmark):
    lean, reference = both_apps(loaded)
    requests = cases(benchmark)

    got = send_all(lean, [fresh(r) for r in requests.values()])
    expected = send_all(reference, [fresh(r) for r in requests.values()])

    for name, a, b in zip(requests, got, expected, strict=True):
        assert answer(a) == answer(b), name
    statuses = {name: r.status_code for name, r in zip(requests, got, strict=True)}
    assert {name for name, status in statuses.items() if status == 200} == set(list(requests)[:11]) | {
        "json with charset", "+json media type", "streamed in chunks"}
    assert {statuses[n] for n in ("spectra twice, escaped", "band twice, escaped", "NaN and wrong scale")} == {422}
    assert statuses["batch above the limit"] == 413 and statuses["gzip"] == 415


def test_the_requests_leave_the_same_counters_and_drift_window(loaded, benchmark):
    lean, reference = both_apps(loaded, drift_window=20)
    requests = list(cases(benchmark).values())

    for app in (lean, reference):
        send_all(app, [fresh(r) for r in requests])
    (lean_metrics,), (reference_metrics,) = (send_all(app, [{"method": "GET", "url": "/metrics"}])
                                             for app in (lean, reference))

    def counted(text: str) -> list[str]:  # what requests change, without timings and process figures
        return sorted(line for line in text.splitlines() if re.match(
            r"soil_model_api_(requests_total|predictions_total|out_of_domain_total|batch_size_(bucket|count)|"
            r"(hotelling_t2|q_residual)_limit_ratio_(bucket|count))", line))

    assert counted(lean_metrics.text) == counted(reference_metrics.text)
    assert 'route="/v1/predict",status="413"' in lean_metrics.text
    windows = [app.state.serving.live.window for app in (lean, reference)]
    assert windows[0].seen == windows[1].seen > 0
    np.testing.assert_array_equal(windows[0].snapshot(), windows[1].snapshot())
    assert windows[0].out_of_domain_ratio() == windows[1].out_of_domain_ratio()


def test_before_the_model_is_loaded_both_answer_503(model_dir, benchmark):
    settings = Settings(model_dir=model_dir, drift_interval_seconds=0)  # no lifespan in process: never loads
    lean, reference = create_app(settings), create_app(settings, lean_predict=False)
    request = {"content": json.dumps({"spectra": benchmark.spectra[:1].tolist()}).encode(), "headers": JSON}

    (a,), (b,) = send_all(lean, [request]), send_all(reference, [request])

    assert a.status_code == 503 and "not loaded" in a.json()["detail"]
    assert answer(a) == answer(b)


def test_an_unexpected_error_is_a_500_counted_as_one(loaded, benchmark):
    lean, reference = both_apps(loaded)
    request = {"content": json.dumps({"spectra": benchmark.spectra[:1].tolist()}).encode(), "headers": JSON}

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    answers = []
    for app in (lean, reference):
        app.state.serving.live.observe = broken
        (resp,) = send_all(app, [request])
        (text,) = send_all(app, [{"method": "GET", "url": "/metrics"}])
        answers.append(answer(resp))
        assert 'soil_model_api_requests_total{method="POST",route="/v1/predict",status="500"} 1.0' in text.text

    assert answers[0] == answers[1]
    assert answers[0][0] == 500


def test_other_methods_and_paths_still_go_to_fastapi(loaded, benchmark):
    lean, reference = both_apps(loaded)
    good = json.dumps({"spectra": benchmark.spectra[:1].tolist()}).encode()
    requests = [{"method": "GET", "url": "/v1/predict"}, {"method": "PUT", "url": "/v1/predict", "content": good},
                {"url": "/v1/predict/", "content": good, "headers": JSON}, {"url": "/v1/model", "content": good},
                {"method": "GET", "url": "/v1/model"}, {"method": "GET", "url": "/healthz"}]

    got, expected = send_all(lean, requests), send_all(reference, requests)

    for request, a, b in zip(requests, got, expected, strict=True):
        assert answer(a) == answer(b), request
    assert [r.status_code for r in got[:2]] == [405, 405]


def test_openapi_still_describes_the_predict_endpoint_exactly(loaded, benchmark):
    lean, reference = both_apps(loaded)

    (a,), (b,) = (send_all(app, [{"method": "GET", "url": "/openapi.json"}]) for app in (lean, reference))

    assert a.json() == b.json()
    post = a.json()["paths"]["/v1/predict"]["post"]
    body = post["requestBody"]["content"]["application/json"]
    assert body["schema"]["properties"]["spectra"]["maxItems"] == MAX_BATCH
    assert body["schema"]["properties"]["spectra"]["items"]["oneOf"][0]["minItems"] == len(benchmark.bands)
    assert {"200", "413", "415", "422", "503"} <= set(post["responses"])


def test_a_body_that_arrives_slowly_but_in_time_is_answered(loaded, benchmark):
    lean, reference = both_apps(loaded, body_timeout_seconds=5.0)
    body = json.dumps({"spectra": benchmark.spectra[:2].tolist()}).encode()

    async def trickle():
        for i in range(0, len(body), 2000):
            await asyncio.sleep(0.05)  # each receive() has to wait: the deadline's timer is armed
            yield body[i:i + 2000]

    (a,), (b,) = (send_all(app, [{"content": trickle(), "headers": JSON}]) for app in (lean, reference))

    assert a.status_code == 200, a.text
    assert answer(a) == answer(b)


@pytest.mark.parametrize("body,named", [
    ('{"spectra": [[1, 2]], "spectr\\u0061": [[3, 4]]}', [["body", "spectra"]]),
    ('{"spectra": [{"a": 1, "\\u0061": 2, "b": 3}]}', [["body", "spectra", 0, "a"]]),
    ('{"spectra": [{"a\\"b": 1, "a\\u0022b": 2, "b": 3}]}', [["body", "spectra", 0, 'a"b']]),
    ('{"spectra": [{"a": 1, "b": 2}, {"b": 3, "a": 4, "b": 5}]}', [["body", "spectra", 1, "b"]]),
])
def test_escaped_spellings_of_a_key_count_as_the_same_key(body, named):
    """The quote count that lets most bodies skip the duplicate check sees every escape as extra quotes
    or unequal text, so escaped repeats still reach the strict parser and are named."""
    schema = BandSchema(["a", "b"] if "a\\\"b" not in body else ['a"b', "b"], max_batch=3)

    with pytest.raises(InvalidRequest) as err:
        schema.parse(body.encode())

    assert [e["loc"] for e in err.value.errors] == named
    assert all(e["type"] == "duplicate_key" for e in err.value.errors)


@pytest.mark.parametrize("body", [
    '{"spectra": [{"a": 1, "b": 2}], "x": {"a": 1, "a": 2}}',
    '{"spectra": [[{"a": 1, "a": 2}, 2]]}',
    '{"spectra": [[1, 2]], "spectra": "x"}',
])
def test_repeated_keys_anywhere_never_pass(body):
    """A repeat inside another error is refused too, whichever error is named first."""
    with pytest.raises(InvalidRequest) as err:
        BandSchema(["a", "b"], max_batch=3).parse(body.encode())

    assert err.value.status == 422


def plain_bodies_and_the_rest(benchmark) -> tuple[list[bytes], list[bytes]]:
    """The request bodies of ``cases``: those ``BandSchema._read_plain`` must read, and all others."""
    bodies = {name: r["content"] for name, r in cases(benchmark).items() if isinstance(r.get("content"), bytes)}
    plain = [bodies[name] for name in (
        "one spectrum", "two spectra", "pretty-printed", "integers and exponents", "full batch", "out of domain",
        "escaped key, not repeated", "fraction reflectance", "absorbance", "1e308", "negative")]
    return plain, [body for body in dict.fromkeys(bodies.values()) if body not in plain]


def test_simdjson_reads_the_plain_bodies_exactly_as_orjson_and_leaves_the_rest_to_it(loaded, benchmark, monkeypatch):
    schema = BandSchema(loaded.bands, MAX_BATCH)
    plain, rest = plain_bodies_and_the_rest(benchmark)

    def read(body: bytes):
        try:
            values, by_name = schema.read_values(body)
        except InvalidRequest as exc:
            return exc.status, exc.errors
        return values, by_name

    fast = [read(body) for body in plain + rest]
    taken = [schema._read_plain(body) is not None for body in plain + rest]
    monkeypatch.setattr(BandSchema, "_read_plain", lambda self, body: None)
    slow = [read(body) for body in plain + rest]

    assert taken == [True] * len(plain) + [False] * len(rest)
    for (a, a_names), (b, b_names) in zip(fast, slow, strict=True):
        assert a_names == b_names
        if isinstance(a, np.ndarray):
            assert a.dtype == b.dtype == np.float64
            np.testing.assert_array_equal(a, b)  # bit for bit: the same correctly rounded parse
        else:
            assert a == b
