"""The per-key rate limit (DESIGN 7.4): party keys get a token bucket of
ESCROW_RATE_LIMIT_PER_SECOND with bursts of twice that, then 429 ``rate_limited`` with
Retry-After; payments, mediator and admin keys, health and metrics are never limited.

The limit lives in the process, not the database: these run on SQLite only. The clock is the
test's, so refilling takes no sleep.
"""

import pytest

from escrow_api.rate_limit import RateLimiter
from escrow_core.settings import Settings
from support.api import Api, auth, running_api
from support.api import test_settings as settings_for

pytestmark = pytest.mark.sqlite_only

RATE = 5
BURST = 2 * RATE


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limit_with(api: Api, clock: Clock) -> None:
    api.app.state.rate_limiter = RateLimiter(RATE, clock=clock)


async def statuses(api: Api, headers: dict[str, str], count: int) -> list[int]:
    return [(await api.client.get("/v1/orders", headers=headers)).status_code for _ in range(count)]


@pytest.mark.parametrize("kind", ["buyer", "supplier", "agent"])
async def test_a_party_key_over_its_burst_is_told_to_wait(api: Api, kind: str) -> None:
    _, key = await api.party_with_key(kind)
    limit_with(api, Clock())

    assert await statuses(api, key, BURST) == [200] * BURST
    refused = await api.client.get("/v1/orders", headers=key)

    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    assert (await api.client.get("/healthz", headers=key)).status_code == 200
    assert (await api.client.get("/metrics", headers=key)).status_code == 200


async def test_each_party_key_has_a_bucket_of_its_own(api: Api) -> None:
    _, first = await api.party_with_key("buyer")
    _, second = await api.party_with_key("buyer")
    limit_with(api, Clock())

    assert await statuses(api, first, BURST + 1) == [200] * BURST + [429]
    assert await statuses(api, second, BURST) == [200] * BURST


@pytest.mark.parametrize("role", ["admin", "payments", "mediator"])
async def test_operator_keys_are_never_limited(api: Api, role: str) -> None:
    key = api.admin if role == "admin" else auth(await api.role_key(role))
    limit_with(api, Clock())

    assert await statuses(api, key, 3 * BURST) == [200] * (3 * BURST)


async def test_the_bucket_refills_with_time(api: Api) -> None:
    _, key = await api.party_with_key("buyer")
    clock = Clock()
    limit_with(api, clock)
    assert await statuses(api, key, BURST + 1) == [200] * BURST + [429]

    clock.now += 1 / RATE  # one token back
    assert await statuses(api, key, 2) == [200, 429]

    clock.now += 3600  # a full bucket, never more
    assert await statuses(api, key, BURST + 1) == [200] * BURST + [429]


async def test_zero_turns_the_limit_off(database_url: str) -> None:
    async with running_api(settings_for(database_url, rate_limit_per_second=0)) as api:
        assert api.app.state.rate_limiter is None
        _, key = await api.party_with_key("buyer")
        assert await statuses(api, key, 3) == [200] * 3


async def test_the_default_is_a_hundred_a_second_in_bursts_of_two_hundred(api: Api) -> None:
    assert Settings().rate_limit_per_second == 100
    limiter = api.app.state.rate_limiter
    assert (limiter.per_second, limiter.burst) == (100, 200)


def test_the_limiter_forgets_the_least_recently_used_key_beyond_its_bound() -> None:
    limiter = RateLimiter(1, clock=Clock(), keys_tracked=3)  # bursts of 2
    for key_id in ("a", "a", "b", "b", "a", "c", "d"):  # a and b spend their bursts
        limiter.wait_for(key_id)

    assert len(limiter) == 3
    assert limiter.wait_for("a") == 1.0  # kept (used after b): still spent
    assert limiter.wait_for("b") == 0  # dropped for d: back with a full bucket
