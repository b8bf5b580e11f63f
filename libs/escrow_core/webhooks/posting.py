"""Posting one claimed delivery, with no transaction or lock held: what the POST got.

Nothing is recorded here (``recording`` does that, many attempts per transaction). Headers are
signed at the moment of sending, so ``webhook-timestamp`` is fresh on every attempt. Any
failure (refused address, timeout, connection error, a non-2xx answer) is a failed attempt.
"""

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from escrow_core.webhooks.claiming import Claimed
from escrow_core.webhooks.schedule import parse_retry_after
from escrow_core.webhooks.signing import signed_headers
from escrow_core.webhooks.ssrf import BlockedAddress

RESPONSE_SNIPPET_BYTES = 2048
MAX_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one POST got, before it is recorded."""

    claimed: Claimed
    started_at: datetime
    status_code: int | None
    error: str | None
    snippet: str | None
    latency_ms: int
    retry_after: float | None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def post(client: httpx.AsyncClient, claimed: Claimed, *, total_timeout: float) -> Attempt:
    """POST one claimed delivery, bounded by ``total_timeout`` for the whole exchange."""
    wall_now = datetime.now(UTC)
    headers = signed_headers(
        claimed.message_id, int(wall_now.timestamp()), claimed.body, claimed.secrets
    )
    headers["content-type"] = "application/json"
    status_code: int | None = None
    error: str | None = None
    snippet: str | None = None
    retry_after: float | None = None
    started = time.perf_counter()
    try:
        async with (
            asyncio.timeout(total_timeout),
            client.stream("POST", claimed.url, content=claimed.body, headers=headers) as response,
        ):
            status_code = response.status_code
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            snippet = await _read_snippet(response)
    except BlockedAddress as blocked:
        error = f"refused by the SSRF guard: {blocked}"
    except TimeoutError:
        error = f"timed out after {total_timeout:g} s"
    except Exception as failure:  # any failure is a failed attempt, recorded as such
        error = f"{type(failure).__name__}: {failure}"[:MAX_ERROR_CHARS]
    if status_code is not None and not 200 <= status_code < 300 and error is None:
        error = f"HTTP {status_code}"
    latency_ms = round((time.perf_counter() - started) * 1000)
    return Attempt(claimed, wall_now, status_code, error, snippet, latency_ms, retry_after)


async def _read_snippet(response: httpx.Response) -> str:
    """The first 2 KB of the response body, as text; the rest is never read."""
    received = b""
    async for chunk in response.aiter_raw():
        received += chunk
        if len(received) >= RESPONSE_SNIPPET_BYTES:
            break
    text = received[:RESPONSE_SNIPPET_BYTES].decode("utf-8", errors="replace")
    return text.replace("\x00", "\ufffd")  # PostgreSQL text cannot hold NUL
