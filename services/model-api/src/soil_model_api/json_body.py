"""Reading a request body's JSON: orjson first, simdjson parsers kept per thread, duplicate keys refused."""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

import numpy as np
import orjson
import simdjson

from soil_model_api.problems import MAX_REPORTED, InvalidRequest, problem, with_count

UNCOUNTED_BYTES = 1 << 20
PARSER_KEPT_BYTES = 64 * 1024  # simdjson parser kept per thread for bodies up to this size (~1 MB of buffers)

_PARSERS = threading.local()


def plain_parser(size: int) -> simdjson.Parser:
    """A simdjson parser for a body of ``size`` bytes: this thread's own for bodies up to ``PARSER_KEPT_BYTES``.

    A parser allocates about 14 bytes per byte of its largest document and keeps them; one kept per
    thread, capped at ``PARSER_KEPT_BYTES``, spares the one-spectrum request that allocation. Larger
    bodies (at most ``UNCOUNTED_BYTES``) get a parser of their own, freed with it. A kept parser
    refuses (RuntimeError) a second document while the first one's values are still referenced.
    """
    if size > PARSER_KEPT_BYTES:
        return simdjson.Parser(max_capacity=UNCOUNTED_BYTES)
    parser = getattr(_PARSERS, "parser", None)
    if parser is None:
        parser = _PARSERS.parser = simdjson.Parser(max_capacity=PARSER_KEPT_BYTES)
    return parser


def occurs(body: bytes | bytearray, byte: bytes, times: int) -> bool:
    """Whether ``byte`` occurs exactly ``times`` times; memchr-fast searches for a few, a vectorised count else."""
    if times <= 4:
        at = -1
        for found in range(times + 1):
            at = body.find(byte, at + 1)
            if at < 0:
                return found == times
        return False
    return int(np.count_nonzero(np.frombuffer(body, dtype=np.uint8) == byte[0])) == times


class _Object(dict):
    """A decoded JSON object that remembers the keys its text repeated."""

    repeated: list[str]

    @classmethod
    def from_pairs(cls, pairs: list[tuple[str, Any]]) -> _Object:
        obj = cls(pairs)
        obj.repeated = [] if len(obj) == len(pairs) else [
            k for k, n in Counter(k for k, _ in pairs).items() if n > 1]
        return obj


def refuse_duplicate_keys(body: bytes | bytearray) -> None:
    """422 naming each key given twice in the body or in one of its spectra; else nothing."""
    try:
        doc = json.loads(body, object_pairs_hook=_Object.from_pairs)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return  # orjson read it; the other checks name what is wrong
    places: list[tuple[list[str | int], _Object]] = []
    if isinstance(doc, _Object):
        places.append(([], doc))
        spectra = doc.get("spectra")
        if isinstance(spectra, list):
            places += [(["spectra", i], s) for i, s in enumerate(spectra) if isinstance(s, _Object)]
    errors = [problem([*loc, key], f"key {key!r} is given more than once; each key may appear once "
                      "(a parser would silently keep the last)", "duplicate_key")
              for loc, obj in places for key in obj.repeated]
    if errors:
        raise InvalidRequest(422, with_count(errors[:MAX_REPORTED], len(errors)))


def decode(body: bytes | bytearray) -> Any:
    """Parse JSON with orjson; NaN/Infinity tokens (not JSON, but common) are parsed to be named later."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        strict_error = str(exc)
    if not body.strip():
        raise InvalidRequest(422, [problem([], "the request body is empty; send {\"spectra\": [...]}", "missing")])
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidRequest(422, [problem([], f"the body is not valid JSON: {strict_error}", "json_invalid")]) from None
