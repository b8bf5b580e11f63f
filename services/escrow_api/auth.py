"""Bearer keys -> the Principal a request acts as.

Key lookups are cached in process for a few seconds (DESIGN allows it). A revocation or a
party's deactivation through this process takes effect at once (the cache forgets the keys),
through another process within ``KEY_CACHE_SECONDS``. Expiry is checked on every hit against
the service clock. A ``read`` key may only GET: anything else is 403 ``read_only_key``.
"""

import time
from collections import OrderedDict
from typing import Annotated

from fastapi import Depends, Header, Request

from escrow_api import rate_limit
from escrow_api.problems import ApiError
from escrow_core.accounts import ApiKey, KeyScope, hash_secret
from escrow_core.application import keys
from escrow_core.application.principal import Principal, acting_as
from escrow_core.application.runtime import Runtime

KEY_CACHE_SECONDS = 5.0
KEY_CACHE_SIZE = 10_000
# Our keys are ~50 characters; anything this long is not one, and is refused unread.
MAX_AUTHORIZATION_BYTES = 512
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class KeyCache:
    """Known keys by the SHA-256 of their secret, least recently used out first: an unknown
    secret is never kept (junk bearer values cannot grow it), and the size is bounded."""

    def __init__(self, size: int = KEY_CACHE_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[str, tuple[float, ApiKey]] = OrderedDict()

    def get(self, secret: str) -> ApiKey | None:
        digest = hash_secret(secret)
        entry = self._entries.get(digest)
        if entry is None or entry[0] < time.monotonic():
            return None
        self._entries.move_to_end(digest)
        return entry[1]

    def put(self, secret: str, key: ApiKey) -> None:
        digest = hash_secret(secret)
        self._entries[digest] = (time.monotonic() + KEY_CACHE_SECONDS, key)
        self._entries.move_to_end(digest)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

    def forget(self, key_id: str) -> None:
        for digest, (_, key) in list(self._entries.items()):
            if key.id == key_id:
                del self._entries[digest]

    def forget_party(self, party_id: str) -> None:
        """Forget every key of the party (it was deactivated)."""
        for digest, (_, key) in list(self._entries.items()):
            if key.party_id == party_id:
                del self._entries[digest]

    def update(self, secret: str, key: ApiKey) -> None:
        """Replace a cached key's record (its new ``last_used_at``), keeping its lifetime."""
        digest = hash_secret(secret)
        entry = self._entries.get(digest)
        if entry is not None and entry[1].id == key.id:
            self._entries[digest] = (entry[0], key)


def key_cache(request: Request) -> KeyCache:
    cache: KeyCache = request.app.state.key_cache
    return cache


def _unauthenticated(detail: str) -> ApiError:
    return ApiError(401, "unauthenticated", detail, headers={"WWW-Authenticate": "Bearer"})


async def _key_for(runtime: Runtime, cache: KeyCache, secret: str) -> ApiKey | None:
    """The working key with this secret, its use recorded (to the minute)."""
    now = await runtime.store.now()  # the wall clock, plus a read of the offset in sandbox mode
    key = cache.get(secret)
    if key is None:
        key = await keys.authenticate(runtime, secret, now)
        if key is None:
            return None
        cache.put(secret, key)
    elif key.expired(now):
        cache.forget(key.id)
        return None
    touched = await keys.touch(runtime, key, now)
    if touched is not key:
        cache.update(secret, touched)
    return touched


async def current_principal(
    request: Request,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    on_behalf_of: Annotated[
        str | None,
        Header(
            alias="Escrow-On-Behalf-Of",
            description="An agent acts for a party it registered: pty_...",
            max_length=100,
        ),
    ] = None,
) -> Principal:
    if authorization is not None and len(authorization.encode()) > MAX_AUTHORIZATION_BYTES:
        raise _unauthenticated("The Authorization header is too long to hold an API key.")
    scheme, _, secret = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise _unauthenticated("Send an API key: Authorization: Bearer <key>.")
    runtime: Runtime = request.app.state.runtime
    key = await _key_for(runtime, key_cache(request), secret.strip())
    if key is None:
        raise _unauthenticated(
            "The API key is not valid (unknown, revoked, expired, or its party deactivated)."
        )
    rate_limit.check(request, key)
    if key.scope is KeyScope.READ and request.method not in READ_METHODS:
        raise ApiError(403, "read_only_key", "This key may only read (its scope is read).")
    return await acting_as(runtime.store, key, on_behalf_of)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
