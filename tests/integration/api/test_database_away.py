"""The database away is a 503 ``database_unavailable`` problem with ``Retry-After``, never a
500; an unexpected error is a 500 problem the app answers itself (nothing re-raised to the
server, which would drop the connection)."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from escrow_core.store import Store
from support import api as api_support
from support.api import Api, running_api
from support.processes import free_port

PROBLEM_JSON = "application/problem+json"


def unreachable_url(backend: str, database_url: str, tmp_path: Path) -> str:
    """A database that cannot be reached: no server on the port, or no directory for the file."""
    if backend == "postgresql":
        url = sa.make_url(database_url).set(host="127.0.0.1", port=free_port())
    else:
        url = sa.make_url(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'escrow.db'}")
    return url.render_as_string(hide_password=False)


@pytest.fixture
async def away_api(backend: str, database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    settings = api_support.test_settings(unreachable_url(backend, database_url, tmp_path))
    async with running_api(settings) as api:
        yield api


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["code"] == "database_unavailable"
    assert 1 <= int(response.headers["retry-after"]) <= 5


async def test_a_read_with_the_database_away_is_503_database_unavailable(away_api: Api) -> None:
    response = await away_api.client.get("/v1/orders", headers=away_api.admin)

    assert_unavailable(response)


async def test_a_write_with_the_database_away_is_503_database_unavailable(away_api: Api) -> None:
    body = {"kind": "buyer", "name": "Buyer co."}
    with_key = {**away_api.admin, "Idempotency-Key": "away-1"}

    assert_unavailable(await away_api.client.post("/v1/parties", json=body, headers=with_key))
    assert_unavailable(await away_api.client.post("/v1/parties", json=body, headers=away_api.admin))


async def test_readyz_is_503_with_the_database_away(away_api: Api) -> None:
    response = await away_api.client.get("/readyz")

    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_JSON


async def test_an_unexpected_error_is_a_500_problem_the_app_answers_itself(
    fresh_store: Store,
) -> None:
    # A real fault, not the database away: a table the code needs is gone.
    async with fresh_store.transaction() as conn:
        await conn.execute(sa.text("ALTER TABLE webhook_endpoints RENAME TO endpoints_gone"))
    async with running_api(api_support.test_settings(fresh_store.url)) as api:
        # httpx's ASGI transport raises whatever the app lets out: an answer here means the
        # app did not hand the error on to the server.
        response = await api.client.get("/v1/webhook-endpoints", headers=api.admin)
        after = await api.client.get("/healthz")

    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["code"] == "internal_error"
    assert response.headers["x-request-id"]
    assert after.status_code == 200
