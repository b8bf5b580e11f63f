"""The per-key rate limit of party keys (DESIGN 7.4): a token bucket per API key.

Each key may make ``rate`` requests a second on average and ``2 x rate`` at once; a request
beyond that is a 429 ``rate_limited`` with ``Retry-After``. Only party keys (buyer, supplier,
agent) are limited: payments, mediator and admin keys are trusted operators, and health and
metrics take no key. The buckets live in the process, so N server processes allow N x the rate.

A token bucket is a dozen lines; the ``limits`` library offers fixed and moving windows (not a
bucket, whose burst DESIGN names) and a storage layer we would not use.
"""

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request

from escrow_api.problems import ApiError
from escrow_core.accounts import PARTYLESS_ROLES, ApiKey

BURST_FACTOR = 2
# Buckets kept, least recently used out first; a bucket dropped would be full again by the
# time its key comes back unless more keys than this are busy within one refill.
KEYS_TRACKED = 10_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets by key id: ``per_second`` tokens a second, up to ``2 x per_second``."""

    def __init__(
        self,
        per_second: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        keys_tracked: int = KEYS_TRACKED,
    ) -> None:
        self.per_second = per_second
        self.burst = BURST_FACTOR * per_second
        self.clock = clock
        self.keys_tracked = keys_tracked
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def wait_for(self, key_id: str) -> float:
        """Take a token for ``key_id``: 0 if it had one, else the seconds until it has."""
        now = self.clock()
        bucket = self._buckets.pop(key_id, None) or _Bucket(self.burst, now)
        self._buckets[key_id] = bucket  # now the most recently used
        if len(self._buckets) > self.keys_tracked:
            self._buckets.popitem(last=False)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.per_second)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.per_second

    def __len__(self) -> int:
        return len(self._buckets)


def rate_limiter(request: Request) -> RateLimiter | None:
    """The app's limiter; None when the limit is off (ESCROW_RATE_LIMIT_PER_SECOND=0)."""
    limiter: RateLimiter | None = request.app.state.rate_limiter
    return limiter


def check(request: Request, key: ApiKey) -> None:
    """Take a token for a party key; 429 ``rate_limited`` if it has none left."""
    limiter = rate_limiter(request)
    if limiter is None or key.role in PARTYLESS_ROLES:
        return
    wait = limiter.wait_for(key.id)
    if wait > 0:
        retry_after = max(1, math.ceil(wait))
        raise ApiError(
            429,
            "rate_limited",
            f"This key is over its limit of {limiter.per_second} requests a second "
            f"(bursts of {limiter.burst}); retry after {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
        )
