"""Idempotency-Key, as Stripe does it, without HTTP.

A key is scoped to the principal plus method and path (the caller builds ``scope``); the body
is compared by a hash of its canonical JSON. The claim is committed on its own, so a concurrent
duplicate sees it. An answer is stored only once the command ran (success or domain refusal):
an order command's success in the command's own atomic write (``Remember``). Records are kept
24 h of wall-clock time, whatever a sandbox clock says; the worker purges them after.
"""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

from escrow_core.application.errors import Conflict, Invalid
from escrow_core.domain.order import OrderState
from escrow_core.store import KeyClaim, Store, StoredAnswer

MAX_KEY_LENGTH = 255
KEEP = timedelta(hours=24)
ABANDONED_AFTER = timedelta(seconds=60)
PURGE_BATCH = 1000


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """An answer as replayed: status, body and the headers worth replaying."""

    status: int
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class Remember:
    """Keep a command's answer under (scope, key); ``answer`` renders it from the order as
    the command leaves it (before the write, so the write can carry it)."""

    scope: str
    key: str
    answer: Callable[[str, OrderState, datetime], StoredResponse]

    def stored(self, response: StoredResponse) -> StoredAnswer:
        return StoredAnswer(self.scope, self.key, response.status, response.body, response.headers)


@dataclass(frozen=True, slots=True)
class Claim:
    """This request holds the key until it records an answer or releases it."""

    store: Store
    scope: str
    key: str

    def answer(self, response: StoredResponse) -> StoredAnswer:
        return StoredAnswer(self.scope, self.key, response.status, response.body, response.headers)

    async def record(self, response: StoredResponse) -> None:
        await self.store.save_answer(self.answer(response))

    async def release(self) -> None:
        """Forget the claim: the request did not run, so a retry may."""
        await self.store.release_key(self.scope, self.key)


def body_hash(raw: bytes) -> str:
    try:
        canonical = orjson.dumps(orjson.loads(raw or b"null"), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        canonical = raw
    return hashlib.sha256(canonical).hexdigest()


async def claim(store: Store, scope: str, key: str, body: bytes) -> Claim | StoredResponse:
    """Claim ``key`` for this request: a Claim to go on with, or the stored answer to replay.

    Invalid ``idempotency_key_reused`` for another body under the key; Conflict
    ``idempotency_key_in_flight`` while the first request with it still runs.
    """
    if not key or len(key) > MAX_KEY_LENGTH:
        raise Invalid(
            "invalid_idempotency_key",
            f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} characters.",
            field="Idempotency-Key",
        )
    digest = body_hash(body)
    now = datetime.now(UTC)
    found = await store.claim_key(
        KeyClaim(scope, key, digest, now, now + KEEP, abandoned_before=now - ABANDONED_AFTER)
    )
    if found is None:
        return Claim(store, scope, key)
    if found.body_hash != digest:
        raise Invalid(
            "idempotency_key_reused",
            "This Idempotency-Key was used with a different request body.",
        )
    if found.status != "done" or found.response_status is None:
        raise Conflict(
            "idempotency_key_in_flight",
            "A request with this Idempotency-Key is still being processed; retry shortly.",
        )
    body_text = found.response_body or ""
    return StoredResponse(found.response_status, body_text.encode(), dict(found.response_headers))


async def purge_expired(store: Store, *, limit: int = PURGE_BATCH) -> int:
    """Delete up to ``limit`` answers kept past their 24 h; returns how many went."""
    return await store.purge_answers(datetime.now(UTC), limit=limit)
