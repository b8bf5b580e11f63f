"""Liveness and readiness: /readyz answers 200 only when the database answers and its schema
is at the latest migration, else 503 problem+json with a code saying which."""

from pathlib import Path

import sqlalchemy as sa

from support import api as api_support
from support.api import Api, running_api


async def test_healthz_answers_while_the_process_runs(api: Api) -> None:
    response = await api.client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_200_on_a_migrated_database(api: Api) -> None:
    response = await api.client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


async def test_readyz_is_503_schema_outdated_on_an_unmigrated_database(
    empty_database_url: str,
) -> None:
    async with running_api(api_support.test_settings(empty_database_url)) as api:
        response = await api.client.get("/readyz")
        alive = await api.client.get("/healthz")

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["status"], problem["code"]) == (503, "schema_outdated")
    assert alive.status_code == 200  # alive, just not ready


async def test_readyz_is_503_database_unreachable_when_the_database_cannot_be_opened(
    backend: str, database_url: str, tmp_path: Path
) -> None:
    if backend == "postgresql":
        url = sa.make_url(database_url).set(database="escrow_no_such_database")
    else:
        url = sa.make_url(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'escrow.db'}")
    async with running_api(
        api_support.test_settings(url.render_as_string(hide_password=False))
    ) as api:
        response = await api.client.get("/readyz")

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "database_unreachable"
