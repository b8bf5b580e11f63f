"""uvicorn's httptools protocol with a bound on the request head (request line and headers).

uvicorn sets no such bound for httptools, which gathers a header value of any length in
memory: 200 requests with distinct 1 MiB bearer values grew a server by 200 MiB. Here a head
over ``MAX_HEAD_BYTES`` is answered 431 ``headers_too_large`` before the rest is kept; what
the client still sends is read and dropped (so it can read the answer rather than meet a
reset), and the connection is closed when it is done or after ``DISCARD_SECONDS``.

h11 bounds the head too (``h11_max_incomplete_event_size``), but it is pure Python and slower
on every request; this keeps httptools' speed and adds one counter.
"""

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from escrow_api.jsonresponse import dumps
from escrow_api.problems import PROBLEM_JSON, problem_body

# Ample for our headers (an Authorization over 512 bytes is refused anyway); nginx's default
# for all of a request's header buffers is 32 KiB.
MAX_HEAD_BYTES = 16 * 1024
DISCARD_SECONDS = 5.0


def _too_large_answer() -> bytes:
    body = dumps(
        problem_body(
            431,
            "headers_too_large",
            f"The request line and headers are over the {MAX_HEAD_BYTES // 1024} KiB limit.",
        )
    )
    head = (
        "HTTP/1.1 431 Request Header Fields Too Large\r\n"
        f"content-type: {PROBLEM_JSON}\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class BoundedHeadProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` that refuses a request head over ``MAX_HEAD_BYTES`` with 431."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # Bytes fed to the parser since the last head was complete, counted only while a
        # head is being read (a body is bounded by the app, not here).
        self._head_bytes = 0
        self._reading_head = True
        self._discarding = False

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            return
        if self._reading_head:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse_head()
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._reading_head = True
        super().on_message_complete()

    def _refuse_head(self) -> None:
        self._discarding = True
        self._unset_keepalive_if_required()
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined request's answer is still being written: the 431 cannot go
            # between its bytes, so the connection just ends.
            self.transport.close()
            return
        self.transport.write(_too_large_answer())
        # The peer's close then ends the connection (eof_received returns None); the timer
        # ends one that keeps sending.
        self.loop.call_later(DISCARD_SECONDS, self.transport.close)
