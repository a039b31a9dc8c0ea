"""The predict body before it is parsed: media type, size limit, memory held at once, deadline.

Memory is bounded before any JSON is parsed: a body longer than the model's limit is refused from
its Content-Length or as soon as the streamed bytes pass it; large bodies are read a few at a time
(``slots``), so a burst of them queues instead of filling the container; and a client must finish
sending within ``timeout`` seconds. Parsing itself is bounded by ``validation.BandSchema.check_counts``.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import AsyncIterator, Coroutine, Generator
from contextlib import asynccontextmanager
from typing import Any

from starlette.requests import Request
from starlette.types import Receive

from soil_model_api.problems import InvalidRequest

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

    def declared_size(self, content_type: str | None, encoding: str | None, length: str | None) -> int | None:
        """The body's declared length (None: not declared), once its headers say it is JSON within the limit.

        Raises:
            InvalidRequest: 415 not JSON (or compressed), 413 declared longer than the limit.
        """
        if content_type != "application/json" or encoding is not None:  # the common header needs no parsing
            wrong = media_problem(content_type, encoding)
            if wrong:
                raise InvalidRequest(415, [header_problem("content-type", wrong, "unsupported_media_type")], CLOSE)
        size = int(length) if length and length.isascii() and length.isdigit() else None
        if size is not None and size > self.limit:
            raise InvalidRequest(413, [self._too_large(f"body of {size} bytes")], CLOSE)
        return size

    @asynccontextmanager
    async def admit(self, request: Request) -> AsyncIterator[bytes | bytearray]:
        """The whole body, held (and counted against the slots) for the ``async with`` block.

        Raises:
            InvalidRequest: 415 not JSON, 413 too long, 408 not sent in time, 503 no room in time,
                400 the client went away.
        """
        headers = request.headers
        size = self.declared_size(headers.get("content-type"), headers.get("content-encoding"),
                                  headers.get("content-length"))
        if size is not None and size <= SMALL_BODY:
            yield await self.read(request.receive)
            return
        async with self.slot():
            yield await self.read(request.receive)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """One of the ``slots`` for a large or undeclared body, held for the block.

        Raises:
            InvalidRequest: 503 when none frees within ``timeout``.
        """
        try:
            async with asyncio.timeout(self.timeout):
                await self._large.acquire()
        except TimeoutError:
            raise InvalidRequest(503, [body_problem(
                f"{self.slots} large bodies are being read; none finished within "
                f"{self.timeout:g} s (MODEL_API_BODY_TIMEOUT_SECONDS); retry", "busy")],
                {"Retry-After": "1"}) from None
        try:
            yield
        finally:
            self._large.release()

    async def read(self, receive: Receive) -> bytes | bytearray:
        """The body from ASGI ``receive``, within ``timeout`` seconds (counted from admission, not arrival).

        The deadline's timer is armed only when a ``receive()`` has to wait: a small body usually
        arrived with the head, and a timer per request would cost more than a tenth of a
        one-spectrum prediction. A body that keeps the server waiting gets the same deadline,
        counted from the call.

        Raises:
            InvalidRequest: 413 longer than the limit, 408 not sent in time, 400 the client went away.
        """
        deadline = asyncio.get_running_loop().time() + self.timeout
        buffer: bytes | bytearray = b""
        while True:
            pending = receive()
            message = None
            if type(pending) is types.CoroutineType:
                try:
                    waiting = pending.send(None)
                except StopIteration as done:  # answered at once: nothing to wait for
                    message = done.value
                else:
                    pending = _resume(pending, waiting)
            if message is None:
                try:
                    async with asyncio.timeout_at(deadline):
                        message = await pending
                except TimeoutError:
                    raise InvalidRequest(408, [body_problem(
                        f"the body did not arrive within {self.timeout:g} s "
                        "(MODEL_API_BODY_TIMEOUT_SECONDS)", "timeout")], CLOSE) from None
            kind = message["type"]
            if kind == "http.request":
                chunk = message.get("body", b"")
                if len(buffer) + len(chunk) > self.limit:
                    raise InvalidRequest(413, [self._too_large("body")], CLOSE)
                if not buffer:
                    buffer = chunk  # the common one-chunk body is not copied
                elif chunk:
                    if isinstance(buffer, bytes):
                        buffer = bytearray(buffer)
                    buffer += chunk
                if not message.get("more_body", False):
                    return buffer  # orjson and the checks read a bytearray as they read bytes
            elif kind == "http.disconnect":
                raise InvalidRequest(400, [body_problem("the client closed the connection before the body ended",
                                                        "disconnected")])

    def _too_large(self, what: str) -> dict:
        return body_problem(f"{what} is above the limit of {self.limit} bytes ({self.origin}; max_body_bytes in "
                            "GET /v1/model); split it into smaller requests", "too_large")


@types.coroutine
def _resume(pending: Coroutine[Any, Any, Any], waiting: Any) -> Generator[Any, Any, Any]:
    """Await a coroutine that has already been started and yielded ``waiting`` (what ``yield from`` does).

    ``BodyGate.read`` starts each ``receive()`` by hand to see whether it answers at once; one that
    waits is finished through this, under the deadline: what the event loop sends or throws in
    (a wake-up, the deadline's cancellation) goes on to ``pending``.
    """
    while True:
        try:
            value = yield waiting
        except GeneratorExit:
            pending.close()
            raise
        except BaseException as exc:  # noqa: BLE001 - CancelledError included: forwarded, not handled
            try:
                waiting = pending.throw(exc)
            except StopIteration as done:
                return done.value
        else:
            try:
                waiting = pending.send(value)
            except StopIteration as done:
                return done.value


def header_problem(name: str, msg: str, kind: str) -> dict:
    return {"loc": ["header", name], "msg": msg, "type": kind}


def body_problem(msg: str, kind: str) -> dict:
    return {"loc": ["body"], "msg": msg, "type": kind}
