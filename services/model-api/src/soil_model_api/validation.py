"""Turn a raw ``/v1/predict`` body into a float64 array in band order, or say exactly what is wrong.

A 100-spectrum request is about 1 MB of JSON, so the body is parsed with orjson and checked with a
few whole-batch numpy operations; only a body that fails those is walked value by value, to name
each offending field. Errors use FastAPI's shape: ``{"detail": [{"loc", "msg", "type"}]}``.

Memory is bounded before parsing: the body is at most ``body_limit`` bytes (``body.BodyGate``), and
``check_counts`` refuses a body with more separators or brackets than a full batch could have, so
the parsed objects stay within a small multiple of a full batch whatever the body holds (3 bytes of
``[],`` would otherwise become ~64 bytes of Python list each). Duplicate keys are refused: JSON
leaves their meaning open (RFC 8259 section 4) and a parser keeps only the last.
"""

from __future__ import annotations

import math
from operator import itemgetter
from typing import Any

import numpy as np
import orjson
import simdjson

from soil_model_api.json_body import UNCOUNTED_BYTES, decode, occurs, plain_parser, refuse_duplicate_keys
from soil_model_api.problems import MAX_REPORTED, InvalidRequest, json_type, problem, with_count

# Bytes one band value may take in a body. A float64's shortest round-trip text is at most 24
# characters (-2.2250738585072014e-308); add ", " and 6 bytes of indentation (json.dumps(indent=2)
# puts values at depth 3). Objects add each quoted band name and ": ".
BYTES_PER_VALUE = 32
BYTES_PER_SPECTRUM = 16  # its brackets, separator and line break
BODY_OVERHEAD = 1024  # {"spectra": [...]} and whitespace
# check_counts admits twice the values and arrays of a full batch, so that near misses (1001
# spectra, one spectrum too long) still get their precise error from the parsed body.
COUNT_SLACK = 2


class BandSchema:
    """The model's bands, prepared once for fast per-request lookups."""

    def __init__(self, bands: list[str], max_batch: int, max_body_bytes: int | None = None):
        self.bands = list(bands)
        self.n = len(self.bands)
        self.band_set = frozenset(self.bands)
        self.max_batch = max_batch
        self._take = itemgetter(*self.bands) if self.n > 1 else (lambda d: (d[self.bands[0]],))
        self.body_limit = max_body_bytes or body_limit(self.bands, max_batch)
        # Band names may hold commas or brackets themselves; object spectra repeat them.
        in_names = "".join(self.bands)
        self.max_commas = COUNT_SLACK * max_batch * (self.n + in_names.count(",")) + 16
        self.max_containers = COUNT_SLACK * (max_batch * (1 + in_names.count("[") + in_names.count("{")) + 2) + 16

    def describe(self) -> str:
        if self.n <= 3:
            return ", ".join(self.bands)
        return f"{self.bands[0]}, {self.bands[1]}, ..., {self.bands[-1]}"

    def parse(self, body: bytes | bytearray) -> np.ndarray:
        """A (n_spectra, n_bands) float64 array of finite values, or InvalidRequest (422, or 413 above max_batch)."""
        values, by_name = self.read_values(body)
        self.check_finite(values, by_name)
        return values

    def read_values(self, body: bytes | bytearray) -> tuple[np.ndarray, list[bool]]:
        """``parse`` without the finite check: numbers in band order, possibly NaN or infinite (``1e999``),
        and for each spectrum whether it was an object by band name (for error locations).

        For a caller that bounds the values anyway (``DomainJudge.plausible``) and calls ``check_finite``
        only when a bound fails, so NaN and Infinity are still named before any other problem of the values.
        """
        self.check_counts(body)
        values = self._read_plain(body)
        if values is not None:
            return values, [False] * len(values)
        doc = decode(body)
        spectra = self._spectra(doc)
        if type(spectra[0]) is list and len(spectra) == 1 and len(spectra[0]) == self.n:
            rows, by_name, n_objects = spectra, [False], 0  # one spectrum in band order: the common request
        else:
            rows, by_name = self._rows(spectra)
            n_objects = sum(by_name)
        # Each quote delimits a key the parse kept ('spectra' and each object's bands): then no key
        # was given twice and no value is a string. Otherwise look for duplicates the slow way.
        plain = occurs(body, b'"', 2 * (len(doc) + self.n * n_objects))
        if not plain:
            refuse_duplicate_keys(body)
        values = None
        if plain and self._no_literals(body, n_objects):
            try:
                values = np.array(rows, dtype=np.float64)
            except (ValueError, OverflowError, TypeError):  # nested arrays, ints beyond float64
                values = None
            if values is not None and values.shape != (len(rows), self.n):
                values = None
        if values is None:
            values = self._convert_slowly(rows, by_name)
        return values, by_name

    def _read_plain(self, body: bytes | bytearray) -> np.ndarray | None:
        """The values of the common body, ``{"spectra": [[n numbers], ...]}``, parsed straight into float64.

        simdjson validates the whole document (RFC 8259, UTF-8) and copies the numbers into one buffer
        without a Python float per value: about 2.5x faster than ``orjson.loads`` and ``np.array``
        for one spectrum. Taken only when nothing could be ambiguous: the document is an object with
        one member (a repeated key is a second member), named ``spectra``, holding 1 to ``max_batch``
        arrays of exactly ``n`` values, no array nested in them (the body's ``[`` are the outer
        array's and the rows'), and every value a number that is a finite float64: ``as_buffer``
        refuses strings, objects, ``true``/``false``/``null``, and the parse refuses NaN and Infinity
        tokens, ``1e999`` and integers beyond 64 bits. Anything else, valid or not, returns None and
        goes the ``orjson`` way, which names what is wrong. Bodies above ``UNCOUNTED_BYTES`` go that
        way too: simdjson's buffers take about 14 bytes per byte of the document.
        """
        if len(body) > UNCOUNTED_BYTES:
            return None
        try:
            doc = plain_parser(len(body)).parse(body)
            if type(doc) is not simdjson.Object or len(doc) != 1:
                return None
            spectra = doc.get("spectra")
            if type(spectra) is not simdjson.Array:
                return None
            m, n = len(spectra), self.n
            if not 0 < m <= self.max_batch or body.count(b"[") != m + 1:
                return None
            for spectrum in spectra:
                if type(spectrum) is not simdjson.Array or len(spectrum) != n:
                    return None
            values = np.frombuffer(spectra.as_buffer(of_type="d"), dtype=np.float64)
        except Exception:  # noqa: BLE001 - whatever simdjson refuses, the orjson way reads or names
            return None
        return values.reshape(m, n) if values.size == m * n else None

    def check_finite(self, values: np.ndarray, by_name: list[bool]) -> None:
        """422 naming each NaN or infinite value of ``read_values``' array (the first ``MAX_REPORTED``)."""
        finite = np.isfinite(values)
        if finite.all():
            return
        bad = np.argwhere(~finite)
        errors = [
            problem(self._loc(int(i), int(j), by_name), f"{self._label(int(j))}: {_number_text(values[i, j])} "
                    "is not allowed; band values must be finite numbers", "finite_number")
            for i, j in bad[:MAX_REPORTED]
        ]
        raise InvalidRequest(422, with_count(errors, len(bad)))

    def check_counts(self, body: bytes | bytearray) -> None:
        """413 before parsing when the body has more values or arrays than ``COUNT_SLACK`` full batches.

        Each value after the first in an array or object needs a comma and each array or object a
        bracket, so the counts bound what ``orjson.loads`` would build whatever the nesting. Bodies
        up to ``UNCOUNTED_BYTES`` are not counted: even 3 bytes per list, they parse to ~24 MiB.
        """
        if len(body) <= UNCOUNTED_BYTES:
            return
        raw = np.frombuffer(body, dtype=np.uint8)  # vectorised counts: bytes.count is ~7x slower
        commas = int(np.count_nonzero(raw == ord(",")))
        if commas > self.max_commas:
            raise InvalidRequest(413, [problem([], f"the body holds {commas + 1} or more values; a request holds at "
                                               f"most {self.max_batch} spectra (MODEL_API_MAX_BATCH) of {self.n} "
                                               "values; refused before parsing", "too_many_values")])
        containers = int(np.count_nonzero(raw == ord("[")) + np.count_nonzero(raw == ord("{")))
        if containers > self.max_containers:
            raise InvalidRequest(413, [problem([], f"the body holds {containers} arrays or objects; a request is one "
                                               f"object whose 'spectra' array holds at most {self.max_batch} "
                                               "spectra (MODEL_API_MAX_BATCH); refused before parsing",
                                               "too_many_arrays")])

    def _no_literals(self, body: bytes | bytearray, n_objects: int) -> bool:
        """True when no ``true``/``false``/``null`` token can be in a body whose only strings are keys.

        numpy would otherwise turn ``true`` into 1.0 without complaint. Single-byte searches after
        the first '[' are memchr-fast; with band names in the body, whole tokens are searched.
        """
        if n_objects == 0:
            start = body.find(b"[")
            return body.find(b"t", start) < 0 and body.find(b"f", start) < 0 and body.find(b"n", start) < 0
        return b"true" not in body and b"false" not in body and b"null" not in body

    def _spectra(self, doc: Any) -> list:
        if not isinstance(doc, dict):
            raise InvalidRequest(422, [problem([], f"expected a JSON object with a 'spectra' array, got {json_type(doc)}",
                                               "model_attributes_type")])
        unknown = [k for k in doc if k != "spectra"]
        if unknown:
            raise InvalidRequest(422, [problem([k], "unknown field; the body has only 'spectra'", "extra_forbidden")
                                       for k in unknown[:MAX_REPORTED]])
        if "spectra" not in doc:
            raise InvalidRequest(422, [problem(["spectra"], "field required: a list of spectra", "missing")])
        spectra = doc["spectra"]
        if not isinstance(spectra, list):
            raise InvalidRequest(422, [problem(["spectra"], f"expected an array of spectra, got {json_type(spectra)}",
                                               "list_type")])
        if not spectra:
            raise InvalidRequest(422, [problem(["spectra"], "empty batch: send at least one spectrum", "too_short")])
        if len(spectra) > self.max_batch:
            raise InvalidRequest(413, [problem(
                ["spectra"], f"batch of {len(spectra)} spectra is above the limit of {self.max_batch} "
                "(MODEL_API_MAX_BATCH); split it into smaller requests", "too_long")])
        return spectra

    def _rows(self, spectra: list) -> tuple[list, list[bool]]:
        """Each spectrum's values in band order; objects are reordered by band name."""
        rows, by_name, errors, n_errors = [], [], [], 0
        for i, spectrum in enumerate(spectra):
            kind = type(spectrum)
            if kind is list:
                if len(spectrum) == self.n:
                    rows.append(spectrum)
                    by_name.append(False)
                    continue
                msg = (f"expected {self.n} values in the model's band order ({self.describe()}), "
                       f"got {len(spectrum)}")
                err = problem(["spectra", i], msg, "band_count")
            elif kind is dict:
                if spectrum.keys() == self.band_set:
                    rows.append(self._take(spectrum))
                    by_name.append(True)
                    continue
                err = self._band_name_problem(i, spectrum)
            else:
                err = problem(["spectra", i], f"expected an array of {self.n} numbers or an object mapping band "
                              f"name to number, got {json_type(spectrum)}", "spectrum_type")
            n_errors += 1
            if len(errors) < MAX_REPORTED:
                errors.append(err)
        if errors:
            raise InvalidRequest(422, with_count(errors, n_errors))
        return rows, by_name

    def _band_name_problem(self, i: int, spectrum: dict) -> dict[str, Any]:
        missing = [b for b in self.bands if b not in spectrum]
        unknown = [str(k) for k in spectrum if k not in self.band_set]
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} bands ({_head(missing)})")
        if unknown:
            parts.append(f"{len(unknown)} unknown bands ({_head(unknown)})")
        return problem(["spectra", i], "; ".join(parts) + f"; the model expects {self.n} bands: {self.describe()}",
                       "band_names")

    def _convert_slowly(self, rows: list, by_name: list[bool]) -> np.ndarray:
        """Value-by-value conversion that names every non-number (strings, booleans, nulls, arrays)."""
        out = np.empty((len(rows), self.n), dtype=np.float64)
        errors, n_errors = [], 0
        for i, row in enumerate(rows):
            for j, value in enumerate(row):
                kind = type(value)
                if kind is float or kind is int:
                    try:
                        out[i, j] = float(value)
                        continue
                    except OverflowError:
                        msg = "number too large for a float64"
                else:
                    msg = f"expected a number, got {json_type(value)}"
                n_errors += 1
                if len(errors) < MAX_REPORTED:
                    errors.append(problem(self._loc(i, j, by_name), f"{self._label(j)}: {msg}", "float_type"))
        if errors:
            raise InvalidRequest(422, with_count(errors, n_errors))
        return out

    def _loc(self, i: int, j: int, by_name: list[bool]) -> list[str | int]:
        return ["spectra", i, self.bands[j] if by_name[i] else j]

    def _label(self, j: int) -> str:
        return f"band {self.bands[j]} (position {j})"


def body_limit(bands: list[str], max_batch: int) -> int:
    """The most bytes a body of ``max_batch`` spectra of ``bands`` needs, as objects by band name.

    >>> body_limit(["wl_350", "wl_355"], 10)
    2024
    """
    per_spectrum = BYTES_PER_SPECTRUM + sum(BYTES_PER_VALUE + len(orjson.dumps(b)) + 2 for b in bands)
    return BODY_OVERHEAD + max_batch * per_spectrum


def _head(names: list[str], k: int = 5) -> str:
    return ", ".join(names[:k]) + (", ..." if len(names) > k else "")


def _number_text(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"
