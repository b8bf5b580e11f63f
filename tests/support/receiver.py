"""A real HTTP webhook receiver on 127.0.0.1, in a thread, as a subscriber would run one.

Every delivery is verified with the public ``standardwebhooks`` library against the secrets
registered for its path, and deduplicated by ``webhook-id``. ``respond`` decides the answer
(200 by default), so a test can fail deliveries for a while, ask to retry later, say 410...

    with Receiver() as receiver:
        receiver.secrets["/a"] = [secret]
        ... receiver.url("/a") ...
        receiver.wait_for(lambda r: len(r.unique()) >= 10)
"""

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Delivery:
    """One request as received (a retry or replay is another Delivery with the same id)."""

    path: str
    webhook_id: str
    timestamp: int
    headers: dict[str, str]
    body: bytes
    payload: dict[str, Any]
    received_at: float  # time.time()
    verified_with: tuple[int, ...]  # indexes of the path's secrets whose signature matched


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0  # seconds to wait before answering


Responder = Callable[[Delivery, int], Answer]  # (delivery, how many times this id was seen)


def always_ok(delivery: Delivery, seen: int) -> Answer:
    return Answer()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the default backlog (5) drops connections under a burst


class Receiver:
    def __init__(self, respond: Responder = always_ok) -> None:
        self.respond = respond
        self.secrets: dict[str, list[str]] = {}
        self.deliveries: list[Delivery] = []  # answered 2xx
        self.refused: list[Delivery] = []  # verified, but answered otherwise
        self.unverified: list[tuple[str, str]] = []  # (path, why) of requests that failed checks
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        # shutdown() waits for the serving loop's next poll: at the default 0.5 s that is half a
        # second at the end of every test that used a receiver.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> "Receiver":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    # --- what arrived ----------------------------------------------------------------------
    def all(self, path: str | None = None) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if path is None or d.path == path]

    def unique(self, path: str | None = None) -> dict[str, Delivery]:
        """The first delivery of each webhook-id, in arrival order."""
        found: dict[str, Delivery] = {}
        for delivery in self.all(path):
            found.setdefault(delivery.webhook_id, delivery)
        return found

    def payloads(self, path: str | None = None) -> list[dict[str, Any]]:
        return [d.payload for d in self.unique(path).values()]

    def wait_for(
        self, condition: Callable[["Receiver"], bool], timeout: float = 20.0, what: str = ""
    ) -> None:
        deadline = time.monotonic() + timeout
        while not condition(self):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"receiver: {what or 'condition'} not met in {timeout} s "
                    f"({len(self.unique())} unique deliveries, {len(self.all())} in all)"
                )
            time.sleep(0.02)

    async def until(
        self, condition: Callable[["Receiver"], bool], within: float = 20.0, what: str = ""
    ) -> None:
        """``wait_for`` for async tests: sleeps without blocking the event loop."""
        deadline = time.monotonic() + within
        while not condition(self):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"receiver: {what or 'condition'} not met in {within} s "
                    f"({len(self.unique())} unique deliveries, {len(self.all())} in all)"
                )
            await asyncio.sleep(0.02)

    # --- the server side -------------------------------------------------------------------
    def _accept(self, path: str, headers: dict[str, str], body: bytes) -> Answer:
        now = time.time()
        secrets = self.secrets.get(path, [])
        matched = []
        for index, secret in enumerate(secrets):
            try:
                Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
            matched.append(index)
        webhook_id = headers.get("webhook-id", "")
        if not matched:
            with self._lock:
                self.unverified.append((path, f"no secret verifies {webhook_id or 'it'}"))
            return Answer(status=400, body=b"signature")
        delivery = Delivery(
            path=path,
            webhook_id=webhook_id,
            timestamp=int(headers["webhook-timestamp"]),
            headers=headers,
            body=body,
            payload=json.loads(body),
            received_at=now,
            verified_with=tuple(matched),
        )
        with self._lock:
            tries = [*self.deliveries, *self.refused]
            seen = sum(1 for d in tries if d.webhook_id == webhook_id)
        answer = self.respond(delivery, seen + 1)
        if 200 <= answer.status < 300:
            with self._lock:
                self.deliveries.append(delivery)
        else:
            with self._lock:
                self.refused.append(delivery)
        return answer

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:
                    # The sender died mid-body (a SIGKILLed worker): no request came, as a
                    # real server would see it; the delivery is sent again after its lease.
                    self.close_connection = True
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                answer = receiver._accept(self.path, headers, body)
                if answer.delay:
                    time.sleep(answer.delay)
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender gave up (a timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
