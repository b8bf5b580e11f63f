"""``escrow keys create --role R [--party ID]`` as a real subprocess.

A key made on the command line is one the API accepts, in its role and as its party; the
secret is printed once and only its hash is stored; a wrong combination is refused with a
plain message and a non-zero exit, and writes nothing.
"""

import asyncio
import json
import subprocess
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from escrow_core import accounts
from escrow_core.accounts import KeyRole, PartyKind
from escrow_core.store import Store
from escrow_core.store.schema import api_keys
from support.processes import run_cli


async def escrow(store: Store | str, *args: str) -> subprocess.CompletedProcess[str]:
    url = store if isinstance(store, str) else store.url
    return await asyncio.to_thread(run_cli, *args, env={"ESCROW_DATABASE_URL": url})


async def party(store: Store, kind: PartyKind) -> str:
    async with store.transaction() as conn:
        made = await accounts.create_party(
            conn,
            kind=kind,
            name=f"{kind.value} co.",
            trade_assurance=False,
            managed_by=None,
            now=datetime.now(UTC),
        )
    return made.id


def printed(result: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    """(id, secret) from the plain output."""
    lines = dict(line.split(":", 1) for line in result.stdout.splitlines())
    return lines["id"].strip(), lines["key"].strip()


async def count_keys(store: Store) -> int:
    async with store.read() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(api_keys))).scalar())


async def test_a_partyless_key_and_a_party_key_work_as_their_role(
    fresh_store: Store,
) -> None:
    payments = await escrow(fresh_store, "keys", "create", "--role", "payments")
    assert payments.returncode == 0, payments.stderr
    key_id, secret = printed(payments)
    assert key_id.startswith("key_")
    assert secret.startswith(accounts.SECRET_PREFIX)
    assert "shown this once" in payments.stderr

    buyer_id = await party(fresh_store, PartyKind.BUYER)
    buyer = await escrow(
        fresh_store, "keys", "create", "--role", "buyer", "--party", buyer_id, "--json"
    )
    assert buyer.returncode == 0, buyer.stderr
    shown = json.loads(buyer.stdout)
    assert shown == {**shown, "role": "buyer", "party_id": buyer_id}
    assert set(shown) == {"id", "key", "role", "party_id", "scope", "created_at", "expires_at"}
    assert (shown["scope"], shown["expires_at"]) == ("full", None)

    now = await fresh_store.now()
    async with fresh_store.read() as conn:
        found_payments = await accounts.find_active_key(conn, secret, now)
        found_buyer = await accounts.find_active_key(conn, shown["key"], now)
        stored = (await conn.execute(sa.select(api_keys.c.key_hash))).scalars().all()
    assert found_payments is not None
    assert (found_payments.id, found_payments.role, found_payments.party_id) == (
        key_id,
        KeyRole.PAYMENTS,
        None,
    )
    assert found_buyer is not None
    assert (found_buyer.role, found_buyer.party_id) == (KeyRole.BUYER, buyer_id)
    assert secret not in stored  # only the hash is kept
    assert accounts.hash_secret(secret) in stored


@pytest.mark.sqlite_only
async def test_scope_and_expiry_are_kept_and_an_expiry_past_is_refused(fresh_store: Store) -> None:
    made = await escrow(
        fresh_store,
        "keys", "create", "--role", "mediator", "--scope", "read",
        "--expires-at", "2999-01-31T12:00:00Z", "--json",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    shown = json.loads(made.stdout)
    assert (shown["scope"], shown["expires_at"]) == ("read", "2999-01-31T12:00:00Z")
    async with fresh_store.read() as conn:
        key = await accounts.get_api_key(conn, shown["id"])
    assert key is not None
    assert (key.scope, key.expires_at) == (
        accounts.KeyScope.READ,
        datetime(2999, 1, 31, 12, tzinfo=UTC),
    )

    past = await escrow(
        fresh_store, "keys", "create", "--role", "mediator", "--expires-at", "2001-01-01"
    )
    assert past.returncode == 1
    assert "not in the future" in past.stderr
    assert await count_keys(fresh_store) == 1


@pytest.mark.sqlite_only
async def test_a_key_for_a_party_of_another_kind_or_no_party_is_refused(
    fresh_store: Store,
) -> None:
    supplier_id = await party(fresh_store, PartyKind.SUPPLIER)
    wrong_kind = await escrow(
        fresh_store, "keys", "create", "--role", "buyer", "--party", supplier_id
    )
    assert wrong_kind.returncode == 1
    assert "is a supplier" in wrong_kind.stderr
    missing = await escrow(fresh_store, "keys", "create", "--role", "agent", "--party", "pty_x")
    assert missing.returncode == 1
    assert "no party pty_x" in missing.stderr
    assert wrong_kind.stdout == missing.stdout == ""
    assert await count_keys(fresh_store) == 0


@pytest.mark.sqlite_only
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--role", "admin", "--party", "pty_x"), "has no party"),
        (("--role", "supplier"), "name it with --party"),
        (("--role", "boss"), "boss"),
        ((), "--role"),
    ],
)
async def test_a_wrong_combination_is_a_usage_error(
    fresh_store: Store, args: tuple[str, ...], message: str
) -> None:
    result = await escrow(fresh_store, "keys", "create", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""
    assert await count_keys(fresh_store) == 0


@pytest.mark.sqlite_only
async def test_an_unmigrated_database_is_named_as_the_problem(empty_database_url: str) -> None:
    result = await escrow(empty_database_url, "keys", "create", "--role", "mediator")
    assert result.returncode == 1
    assert "escrow migrate" in result.stderr
