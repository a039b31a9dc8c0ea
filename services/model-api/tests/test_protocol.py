"""protocol: slow and oversized request heads against the real server (uvicorn + httptools)."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import numpy as np
import pytest

SLOW_CLIENTS = 200  # half send nothing, half trickle a header byte every 0.2 s
GIVE_UP = 60.0  # a bound on the test, not on the server: they are closed after the 1 s head deadline


@pytest.fixture(scope="module")
def guarded(service):
    """The live service, whose head deadline is 1 s and head cap 8192 bytes (conftest's ``service``)."""
    assert (service.head_timeout, service.max_head_bytes) == (1.0, 8192)
    return service.url


def open_socket(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=GIVE_UP)
    return sock


def trickle(sock: socket.socket, stop: threading.Event) -> None:
    """One byte of a never-ending request head every 0.2 s, until the server closes or ``stop``."""
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 10_000
    for byte in head:
        if stop.is_set():
            return
        try:
            sock.send(bytes([byte]))
        except OSError:
            return
        time.sleep(0.2)


def answer(sock: socket.socket) -> bytes:
    """What the server sends before closing (b'' when it closes silently); raises on GIVE_UP."""
    chunks = []
    while chunk := sock.recv(4096):
        chunks.append(chunk)
    return b"".join(chunks)


def read_response(sock: socket.socket) -> bytes:
    """One response with a Content-Length, read whole, so the next one on the connection starts clean."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_slow_clients_are_cut_off_while_others_are_answered(guarded, benchmark):
    idle = [open_socket(guarded) for _ in range(SLOW_CLIENTS // 2)]
    slow = [open_socket(guarded) for _ in range(SLOW_CLIENTS // 2)]
    stop = threading.Event()
    threads = [threading.Thread(target=trickle, args=(s, stop), daemon=True) for s in slow]
    for t in threads:
        t.start()
    try:
        # While they hold their connections, ordinary clients are served.
        with httpx.Client(base_url=guarded, timeout=30) as client:
            answers = [client.post("/v1/predict", json={"spectra": benchmark.spectra[i:i + 1].tolist()})
                       for i in range(20)]
        closed = [answer(s) for s in idle + slow]
    finally:
        stop.set()
        for s in idle + slow:
            s.close()

    assert [r.status_code for r in answers] == [200] * 20
    np.testing.assert_allclose([r.json()["predictions"][0] for r in answers], benchmark.expected[:20], rtol=0,
                               atol=1e-9)
    assert all(c.startswith(b"HTTP/1.1 408 ") for c in closed), {c[:40] for c in closed}
    assert b"request head not received within 1 s" in closed[0]
    assert httpx.get(f"{guarded}/readyz").status_code == 200


def test_a_head_above_the_cap_is_431_and_the_connection_closed(guarded):
    sock = open_socket(guarded)
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 100_000)
        got = answer(sock)
    finally:
        sock.close()

    assert got.startswith(b"HTTP/1.1 431 ")
    assert b"request head above 8192 bytes" in got


def test_a_head_far_above_the_cap_still_gets_its_431(guarded):
    """A megabyte head: the server refuses after its first read while most of the head is still unread.

    Had the server closed both halves with those bytes unread, its kernel would send a TCP reset and the
    client's read would fail with ECONNRESET; with the lingering close it reads the 431, then the end.
    """
    sock = open_socket(guarded)
    try:
        sock.setblocking(False)
        sent = sock.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 4_000_000)
        sock.settimeout(GIVE_UP)
        got = answer(sock)
    finally:
        sock.close()

    assert sent > 300_000, f"only {sent} bytes in flight; the test needs more than one server read"
    assert got.startswith(b"HTTP/1.1 431 "), got[:40]


def test_a_keep_alive_connection_gets_a_fresh_head_deadline_per_request(guarded, benchmark):
    """Slow heads are cut off on reused connections too, and a prompt one is answered each time."""
    sock = open_socket(guarded)
    body = json.dumps({"spectra": benchmark.spectra[:1].tolist()}).encode()
    request = (b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    try:
        replies = []
        for _ in range(3):
            sock.sendall(request)
            replies.append(read_response(sock))
            time.sleep(0.5)  # idle for half the head deadline, within the keep-alive timeout
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # then a head that never ends
        last = answer(sock)
    finally:
        sock.close()

    assert all(r.startswith(b"HTTP/1.1 200 ") for r in replies)
    assert last.startswith(b"HTTP/1.1 408 ")
