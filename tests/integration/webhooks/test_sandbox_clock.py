"""POST /v1/sandbox/clock: only in sandbox mode, only for an admin, shared through the database."""

from datetime import UTC, datetime, timedelta

from escrow_core.store import Store, open_store
from support.api import Api, auth
from support.receiver import Receiver

from .conftest import hooks_on

PATH = "/v1/sandbox/clock"


async def test_without_sandbox_mode_the_route_does_not_exist(api: Api) -> None:
    response = await api.client.post(PATH, json={"advance_seconds": 60}, headers=api.admin)

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_an_admin_moves_the_clock_for_everyone_on_the_database(
    fresh_store: Store, receiver: Receiver
) -> None:
    async with hooks_on(fresh_store, receiver, sandbox=True) as hooks:
        headers = {**hooks.api.admin, "Idempotency-Key": "tick-1"}
        moved = await hooks.api.client.post(PATH, json={"advance_seconds": 3600}, headers=headers)
        replayed = await hooks.api.client.post(
            PATH, json={"advance_seconds": 3600}, headers=headers
        )
        again = await hooks.api.client.post(
            PATH, json={"advance_seconds": 60}, headers=hooks.api.admin
        )

    assert moved.status_code == 200, moved.text
    assert moved.json()["offset_seconds"] == 3600
    assert replayed.json() == moved.json()  # a retried request does not move it twice
    assert again.json()["offset_seconds"] == 3660
    # Another process (here: another store on the same database) sees the same time.
    elsewhere_store = open_store(fresh_store.url, sandbox=True)
    try:
        elsewhere = await elsewhere_store.now()
    finally:
        await elsewhere_store.dispose()
    assert elsewhere - datetime.now(UTC) > timedelta(seconds=3650)


async def test_only_an_admin_moves_it_and_only_forward(
    fresh_store: Store, receiver: Receiver
) -> None:
    async with hooks_on(fresh_store, receiver, sandbox=True) as hooks:
        _, buyer_auth = await hooks.api.party_with_key("buyer")
        mediator = auth(await hooks.api.role_key("mediator"))
        by_buyer = await hooks.api.client.post(
            PATH, json={"advance_seconds": 60}, headers=buyer_auth
        )
        by_mediator = await hooks.api.client.post(
            PATH, json={"advance_seconds": 60}, headers=mediator
        )
        backwards = await hooks.api.client.post(
            PATH, json={"advance_seconds": -60}, headers=hooks.api.admin
        )
        junk = await hooks.api.client.post(
            PATH, json={"advance_seconds": "60", "x": 1}, headers=hooks.api.admin
        )
        anonymous = await hooks.api.client.post(PATH, json={"advance_seconds": 60})

    assert by_buyer.status_code == 403
    assert by_mediator.status_code == 403
    assert backwards.status_code == 422
    assert junk.status_code == 422
    assert anonymous.status_code == 401
