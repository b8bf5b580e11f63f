"""Idempotency-Key, as Stripe does it, without HTTP.

A key is scoped to the principal plus method and path (the caller builds ``scope``); the body
is compared by a hash of its canonical JSON. Records are kept 24 h of wall-clock time,
whatever a sandbox clock says; the worker purges them after.

An order command takes no claim: its answer is kept in the command's own atomic write
(``Remember``), and a duplicate waits for the attempt holding the key (up to
``DUPLICATE_WAIT``), then replays the answer it kept; a key with a kept answer is always
replayed, never decided again. Other writes claim the key first, in a commit of its own, and
complete the claim in their write; only the claim's holder may complete or release it, and
only a request with the same body takes it over, after its lease.
"""

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import orjson

from escrow_core.application.errors import Conflict, Invalid
from escrow_core.domain.errors import DomainError
from escrow_core.domain.order import OrderState
from escrow_core.store import KeyClaim, KeyRecord, Store, StoredAnswer

MAX_KEY_LENGTH = 255
KEEP = timedelta(hours=24)
# A claim not completed by then is taken to be abandoned (its holder died): longer than any
# request runs, so a slow request is never overtaken (and if it were, it could not complete).
LEASE = timedelta(minutes=5)
DUPLICATE_WAIT_SECONDS = 5.0
PURGE_BATCH = 1000


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """An answer as replayed: status, body and the headers worth replaying."""

    status: int
    body: bytes
    headers: dict[str, str]


class Replayed(Exception):
    """The request was answered before under its Idempotency-Key: replay ``answer``."""

    def __init__(self, answer: StoredResponse) -> None:
        super().__init__("answered before under this Idempotency-Key")
        self.answer = answer


def in_flight() -> Conflict:
    return Conflict(
        "idempotency_key_in_flight",
        "A request with this Idempotency-Key is still being processed; retry shortly.",
    )


def _reused() -> Invalid:
    return Invalid(
        "idempotency_key_reused", "This Idempotency-Key was used with a different request body."
    )


def _kept(scope: str, key: str, body_hash: str, response: StoredResponse) -> StoredAnswer:
    now = datetime.now(UTC)
    return StoredAnswer(
        scope, key, response.status, response.body, response.headers, body_hash, now, now + KEEP
    )


def _stored_response(found: KeyRecord) -> StoredResponse:
    body = (found.response_body or "").encode()
    return StoredResponse(found.response_status or 200, body, dict(found.response_headers))


@dataclass(frozen=True, slots=True)
class Remember:
    """An order command's Idempotency-Key: ``answer`` renders its answer from the order as the
    command leaves it (before the write, so the write can carry it); ``refusal`` renders a
    refusal by the order's rules, or None for one that is not kept."""

    scope: str
    key: str
    body_hash: str
    answer: Callable[[str, OrderState, datetime], StoredResponse]
    refusal: Callable[[DomainError], StoredResponse | None]

    def stored(self, response: StoredResponse) -> StoredAnswer:
        return _kept(self.scope, self.key, self.body_hash, response)

    def replay(self, found: KeyRecord) -> Replayed:
        """The answer kept under the key, for this request (Invalid if its body differs)."""
        if found.body_hash != self.body_hash:
            raise _reused()
        return Replayed(_stored_response(found))


def remember(
    scope: str,
    key: str,
    body: bytes,
    answer: Callable[[str, OrderState, datetime], StoredResponse],
    refusal: Callable[[DomainError], StoredResponse | None],
) -> Remember:
    _check(key)
    return Remember(scope, key, body_hash(body), answer, refusal)


@dataclass(frozen=True, slots=True)
class Claim:
    """This request holds the key until it completes the claim with an answer or releases it."""

    store: Store
    scope: str
    key: str
    body_hash: str
    holder: str

    def answer(self, response: StoredResponse) -> StoredAnswer:
        return replace(_kept(self.scope, self.key, self.body_hash, response), holder=self.holder)

    async def release(self) -> None:
        """Forget the claim: the request did not run, so a retry may."""
        await self.store.release_key(self.scope, self.key, self.holder)


def body_hash(raw: bytes) -> str:
    try:
        canonical = orjson.dumps(orjson.loads(raw or b"null"), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        canonical = raw
    return hashlib.sha256(canonical).hexdigest()


def _check(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH:
        raise Invalid(
            "invalid_idempotency_key",
            f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} characters.",
            field="Idempotency-Key",
        )


async def claim(store: Store, scope: str, key: str, body: bytes) -> Claim | StoredResponse:
    """Claim ``key`` for this request: a Claim to go on with, or the stored answer to replay.

    Invalid ``idempotency_key_reused`` for another body under the key; Conflict
    ``idempotency_key_in_flight`` while the first request with it still runs.
    """
    _check(key)
    digest = body_hash(body)
    now = datetime.now(UTC)
    holder = uuid.uuid4().hex
    found = await store.claim_key(
        KeyClaim(scope, key, digest, now, now + KEEP, abandoned_before=now - LEASE, holder=holder)
    )
    if found is None:
        return Claim(store, scope, key, digest, holder)
    if found.body_hash != digest:
        raise _reused()
    if found.status != "done" or found.response_status is None:
        raise in_flight()
    return _stored_response(found)


async def purge_expired(store: Store, *, limit: int = PURGE_BATCH) -> int:
    """Delete up to ``limit`` answers kept past their 24 h; returns how many went."""
    return await store.purge_answers(datetime.now(UTC), limit=limit)
