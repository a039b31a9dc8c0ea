"""uvicorn's httptools protocol with a deadline and a size cap for each request head.

uvicorn bounds idle keep-alive connections (``timeout_keep_alive``) but not the time a client takes
to send a request head: a connection that sends nothing, or one header byte every few seconds,
stays open for ever (the Slowloris pattern), and httptools buffers a header of any size. Here the
head (request line and headers) must arrive within ``head_timeout`` seconds of the connection
opening or of its first byte, and within ``max_head_bytes``; otherwise the client gets 408 or 431
and the connection is closed. The body has its own deadline in the app (``body.BodyGate``).

The close is a lingering one (RFC 9112 section 9.6): the server half-closes after the refusal and
discards what the client still sends for up to ``LINGER_SECONDS``. Closing both halves at once while
the client is still sending makes the kernel answer with a TCP reset, which can destroy the 408/431
before the client reads it.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}
LINGER_SECONDS = 2.0  # how long a refused connection's further bytes are read and dropped before the close


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` plus a per-request head deadline and head size cap (set by ``guarded_protocol``)."""

    head_timeout: float = 10.0
    max_head_bytes: int = 16 * 1024

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._in_head = True
        self._lingering = False
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return  # a refused client's remaining bytes: read and dropped until it closes or LINGER_SECONDS
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        # Checked after parsing, so a packet that ends the head and carries body bytes is not counted.
        if self._in_head and self._head_bytes > self.max_head_bytes and not self.transport.is_closing():
            self._refuse(431, f"request head above {self.max_head_bytes} bytes")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True  # its bytes are counted from the packet this head starts in
        if self._head_timer is None:  # a keep-alive connection's next request: a fresh deadline
            self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._in_head, self._head_bytes = False, 0
        self._disarm_head_timer()
        super().on_headers_complete()

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._in_head or self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self._arm_head_timer()  # a pipelined head behind a running request: wait for that response
            return
        self._refuse(408, f"request head not received within {self.head_timeout:g} s")

    def _refuse(self, status: int, detail: str) -> None:
        self._disarm_head_timer()
        body = detail.encode()
        self.transport.write(b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
                             b"connection: close\r\n\r\n%s" % (status, REASONS[status], len(body), body))
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self._lingering = True
        self.transport.write_eof()  # FIN after the refusal; reads go on so the kernel sends no reset
        self.loop.call_later(LINGER_SECONDS, self.transport.close)


def guarded_protocol(head_timeout: float, max_head_bytes: int) -> type[GuardedHttpToolsProtocol]:
    """A protocol class for ``uvicorn.run(http=...)`` with these limits."""
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,),
                {"head_timeout": head_timeout, "max_head_bytes": max_head_bytes})
