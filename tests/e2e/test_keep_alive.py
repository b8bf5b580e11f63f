"""An idle connection outlives a client's own keep-alive expiry.

httpx keeps an idle connection 5 s, uvicorn's default keep-alive is 5 s too: a request sent on
a connection just as the server closes it meets a reset (httpx.ReadError) though the server was
never asked. The server keeps idle connections longer, so the client is always the one to end
them.
"""

import socket
import time
from urllib.parse import urlsplit

import pytest

from support.processes import Process

HTTPX_KEEPALIVE_EXPIRY = 5.0
REQUEST = b"GET /healthz HTTP/1.1\r\nHost: escrow\r\n\r\n"


def _answer(connection: socket.socket) -> bytes:
    """One request on ``connection`` and its whole answer (head and body), or what came."""
    connection.sendall(REQUEST)
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(4096)
        if not chunk:
            return received
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length and (chunk := connection.recv(4096)):
        body += chunk
    return received


@pytest.mark.sqlite_only  # the HTTP server's own behaviour: one backend shows it
def test_a_connection_idle_past_a_clients_expiry_still_answers(server: Process) -> None:
    assert server.base_url is not None
    address = urlsplit(server.base_url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        assert _answer(connection).startswith(b"HTTP/1.1 200")
        time.sleep(HTTPX_KEEPALIVE_EXPIRY + 0.5)
        assert _answer(connection).startswith(b"HTTP/1.1 200")
