"""The floor of a Python HTTP prediction service: a bare ASGI app on uvicorn, orjson, one dot product.

Run by bench_api.py: ``python bench/_asgi_floor.py PORT FOLDED.npz``. POST /predict takes
``{"spectra": [[...], ...]}`` and answers ``{"predictions": [...]}``: the model's nonlinear steps as
they are (``ops``: log10, negative, resample, snv; none for plain PLS), then the folded weight vector
(every linear step after them, centring and PLS coefficients in one vector) plus an offset
(``bench_api.fold``). No validation, no routing, no middleware: what any framework adds is measured
against this.
"""

import sys

import numpy as np
import orjson
import uvicorn

FOLDED = np.load(sys.argv[2])
OPS = [str(op) for op in FOLDED["ops"]]
RESAMPLE = FOLDED.get("resample")
WEIGHTS, OFFSET = FOLDED["weights"], float(FOLDED["offset"])
HEADERS = [(b"content-type", b"application/json")]


def snv(x):
    return (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)


STEPS = {"log10": np.log10, "negative": np.negative, "resample": lambda x: x @ RESAMPLE, "snv": snv}
PIPELINE = [STEPS[op] for op in OPS]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"] == "/ping":
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": b"{}"})
        return
    spectra = np.asarray(orjson.loads(body)["spectra"], dtype=np.float64)
    for step in PIPELINE:
        spectra = step(spectra)
    predictions = spectra @ WEIGHTS + OFFSET
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body",
                "body": orjson.dumps({"predictions": predictions}, option=orjson.OPT_SERIALIZE_NUMPY)})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
