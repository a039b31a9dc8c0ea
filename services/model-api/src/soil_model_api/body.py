"""The predict body before it is parsed: media type, size limit, memory held at once, deadline.

Memory is bounded before any JSON is parsed: a body longer than the model's limit is refused from
its Content-Length or as soon as the streamed bytes pass it; large bodies are read a few at a time
(``slots``), so a burst of them queues instead of filling the container; and a client must finish
sending within ``timeout`` seconds. Parsing itself is bounded by ``validation.BandSchema.check_counts``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.requests import ClientDisconnect, Request

from soil_model_api.validation import InvalidRequest

# Bodies up to this size skip the queue: one spectrum is 5-20 kB, so the single-spectrum path never
# waits; at most MODEL_API_LIMIT_CONCURRENCY of them are in flight (32 MiB at 1024).
SMALL_BODY = 32 * 1024
CLOSE = {"Connection": "close"}  # the rest of a refused body is not read


def media_problem(content_type: str | None, encoding: str | None) -> str | None:
    """Why a body with these headers is not JSON we read, or None. JSON is UTF-8 (RFC 8259 section 8.1)."""
    if encoding and encoding.strip().lower() not in ("identity", ""):
        return f"Content-Encoding {encoding!r} is not supported; send the JSON uncompressed"
    media, _, params = (content_type or "").partition(";")
    media = media.strip().lower()
    if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
        given = f"Content-Type {content_type!r}" if content_type else "no Content-Type"
        return f"{given}: send the body as JSON with Content-Type: application/json"
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return f"charset {value.strip()!r}: JSON bodies are UTF-8"
    return None


class BodyGate:
    """Admits predict bodies of at most ``limit`` bytes, holding at most ``slots`` large ones at once."""

    def __init__(self, limit: int, memory_bytes: int, timeout: float, origin: str):
        self.limit = limit
        self.origin = origin  # what set the limit, for messages
        self.timeout = timeout
        self.slots = max(1, memory_bytes // limit)
        self._large = asyncio.Semaphore(self.slots)

    @asynccontextmanager
    async def admit(self, request: Request) -> AsyncIterator[bytes | bytearray]:
        """The whole body, held (and counted against the slots) for the ``async with`` block.

        Raises:
            InvalidRequest: 415 not JSON, 413 too long, 408 not sent in time, 503 no room in time,
                400 the client went away.
        """
        headers = request.headers
        wrong = media_problem(headers.get("content-type"), headers.get("content-encoding"))
        if wrong:
            raise InvalidRequest(415, [header_problem("content-type", wrong, "unsupported_media_type")], CLOSE)
        declared = headers.get("content-length")
        size = int(declared) if declared and declared.isdigit() else None
        if size is not None and size > self.limit:
            raise InvalidRequest(413, [self._too_large(f"body of {size} bytes")], CLOSE)
        large = size is None or size > SMALL_BODY
        if large:
            try:
                async with asyncio.timeout(self.timeout):
                    await self._large.acquire()
            except TimeoutError:
                raise InvalidRequest(503, [body_problem(
                    f"{self.slots} large bodies are being read; none finished within "
                    f"{self.timeout:g} s (MODEL_API_BODY_TIMEOUT_SECONDS); retry", "busy")],
                    {"Retry-After": "1"}) from None
        try:
            try:
                async with asyncio.timeout(self.timeout):  # counted from admission, not arrival
                    body = await self._read(request)
            except TimeoutError:
                raise InvalidRequest(408, [body_problem(
                    f"the body did not arrive within {self.timeout:g} s "
                    "(MODEL_API_BODY_TIMEOUT_SECONDS)", "timeout")], CLOSE) from None
            yield body
        finally:
            if large:
                self._large.release()

    async def _read(self, request: Request) -> bytes | bytearray:
        buffer: bytes | bytearray = b""
        try:
            async for chunk in request.stream():
                if len(buffer) + len(chunk) > self.limit:
                    raise InvalidRequest(413, [self._too_large("body")], CLOSE)
                if not buffer:
                    buffer = chunk  # the common one-chunk body is not copied
                elif chunk:
                    if isinstance(buffer, bytes):
                        buffer = bytearray(buffer)
                    buffer += chunk
        except ClientDisconnect:
            raise InvalidRequest(400, [body_problem("the client closed the connection before the body ended",
                                                    "disconnected")]) from None
        return buffer  # orjson and the checks read a bytearray as they read bytes

    def _too_large(self, what: str) -> dict:
        return body_problem(f"{what} is above the limit of {self.limit} bytes ({self.origin}; max_body_bytes in "
                            "GET /v1/model); split it into smaller requests", "too_large")


def header_problem(name: str, msg: str, kind: str) -> dict:
    return {"loc": ["header", name], "msg": msg, "type": kind}


def body_problem(msg: str, kind: str) -> dict:
    return {"loc": ["body"], "msg": msg, "type": kind}
