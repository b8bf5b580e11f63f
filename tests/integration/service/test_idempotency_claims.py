"""A write that is not an order command claims its Idempotency-Key first. Only the claim's
holder completes or releases it; after its lease only a request with the same body takes it
over, and the overtaken request's write then rolls back whole (DESIGN 7.4)."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_core.application import idempotency, transactions
from escrow_core.application.errors import Conflict, Invalid
from escrow_core.application.idempotency import Claim, StoredResponse
from escrow_core.store import Store, schema
from support.events import new_stream_id

BODY = b'{"name": "Acme"}'
ANSWER = StoredResponse(201, b'{"id": 1}', {})


async def _claim(store: Store, scope: str, body: bytes = BODY) -> Claim:
    claimed = await idempotency.claim(store, scope, "key-1", body)
    assert isinstance(claimed, Claim)
    return claimed


async def _age(store: Store, scope: str, by: timedelta) -> None:
    """As if the claim had been made ``by`` ago."""
    t = schema.idempotency_keys
    async with store.transaction() as conn:
        await conn.execute(
            t.update().where(t.c.scope == scope).values(created_at=datetime.now(UTC) - by)
        )


async def _write_marker(store: Store, claim: Claim, marker: str) -> None:
    """A write that leaves a trace (a party) and completes ``claim`` with its answer."""

    async def work(conn: AsyncConnection, now: datetime) -> str:
        await conn.execute(
            schema.parties.insert().values(
                id=marker, kind="buyer", name=marker, trade_assurance=False, created_at=now
            )
        )
        return marker

    await transactions.write(store, work, lambda _: claim.answer(ANSWER))


async def _party_exists(store: Store, party_id: str) -> bool:
    async with store.read() as conn:
        found = await conn.execute(
            sa.select(schema.parties.c.id).where(schema.parties.c.id == party_id)
        )
        return found.first() is not None


async def test_an_in_flight_claim_is_not_taken_over_before_its_lease(store: Store) -> None:
    scope = new_stream_id("scope")
    await _claim(store, scope)
    await _age(store, scope, idempotency.LEASE - timedelta(seconds=5))
    with pytest.raises(Conflict) as busy:
        await idempotency.claim(store, scope, "key-1", BODY)
    assert busy.value.code == "idempotency_key_in_flight"


async def test_another_body_never_takes_a_claim_over(store: Store) -> None:
    scope = new_stream_id("scope")
    first = await _claim(store, scope)
    await _age(store, scope, idempotency.LEASE + timedelta(minutes=1))

    with pytest.raises(Invalid) as reused:
        await idempotency.claim(store, scope, "key-1", b'{"name": "Other"}')

    assert reused.value.code == "idempotency_key_reused"
    marker = new_stream_id("pty")
    await _write_marker(store, first, marker)  # the first request still completes
    assert await _party_exists(store, marker)


async def test_only_the_holder_completes_a_claim_taken_over(store: Store) -> None:
    scope = new_stream_id("scope")
    overtaken = await _claim(store, scope)
    await _age(store, scope, idempotency.LEASE + timedelta(minutes=1))
    taker = await _claim(store, scope)  # the same body, after the lease

    late = new_stream_id("pty")
    with pytest.raises(Conflict) as lost:
        await _write_marker(store, overtaken, late)
    assert lost.value.code == "idempotency_key_in_flight"
    assert not await _party_exists(store, late), "the overtaken write rolled back whole"
    await overtaken.release()  # and its release leaves the taker's claim alone

    kept = new_stream_id("pty")
    await _write_marker(store, taker, kept)
    assert await _party_exists(store, kept)
    replayed = await idempotency.claim(store, scope, "key-1", BODY)
    assert replayed == ANSWER
