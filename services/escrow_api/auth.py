"""Bearer keys -> the Principal a request acts as.

Key lookups are cached in process for a few seconds (DESIGN allows it); a revocation through
this process takes effect at once, through another process within ``KEY_CACHE_SECONDS``.
"""

import time
from typing import Annotated

from fastapi import Depends, Header, Request

from escrow_api.problems import ApiError
from escrow_core.accounts import ApiKey
from escrow_core.application import keys
from escrow_core.application.principal import Principal, acting_as
from escrow_core.application.runtime import Runtime

KEY_CACHE_SECONDS = 5.0
KEY_CACHE_SIZE = 10_000


class KeyCache:
    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, ApiKey | None]] = {}

    def get(self, secret: str) -> tuple[bool, ApiKey | None]:
        entry = self._entries.get(secret)
        if entry is None or entry[0] < time.monotonic():
            return False, None
        return True, entry[1]

    def put(self, secret: str, key: ApiKey | None) -> None:
        if len(self._entries) > KEY_CACHE_SIZE:
            self._entries.clear()
        self._entries[secret] = (time.monotonic() + KEY_CACHE_SECONDS, key)

    def forget(self, key_id: str) -> None:
        for secret, (_, key) in list(self._entries.items()):
            if key is not None and key.id == key_id:
                del self._entries[secret]


def key_cache(request: Request) -> KeyCache:
    cache: KeyCache = request.app.state.key_cache
    return cache


def _unauthenticated(detail: str) -> ApiError:
    return ApiError(401, "unauthenticated", detail, headers={"WWW-Authenticate": "Bearer"})


async def _key_for(runtime: Runtime, cache: KeyCache, secret: str) -> ApiKey | None:
    hit, key = cache.get(secret)
    if not hit:
        key = await keys.authenticate(runtime, secret)
        cache.put(secret, key)
    return key


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
    scheme, _, secret = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise _unauthenticated("Send an API key: Authorization: Bearer <key>.")
    runtime: Runtime = request.app.state.runtime
    key = await _key_for(runtime, key_cache(request), secret.strip())
    if key is None:
        raise _unauthenticated("The API key is not valid (unknown or revoked).")
    return await acting_as(runtime.store, key, on_behalf_of)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
