"""Idempotency-Key, as Stripe does it.

The key is scoped to the principal (its party, or the key for party-less roles) plus
Escrow-On-Behalf-Of, method and path; the body is compared by a hash of its canonical JSON.
The claim is committed in its own short transaction, so a concurrent duplicate sees it and gets
409. A response is stored only once the command ran (success or domain refusal) - a success in
the command's own transaction - never for validation or auth failures. Records are kept 24 h
(``KEEP``); an in-flight claim older than ``ABANDONED_AFTER`` (a crashed process) is taken over.
"""

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from fastapi import Request, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_api.auth import Principal
from escrow_api.problems import ApiError
from escrow_core.idempotency import StoredResponse, save_response
from escrow_core.runtime import Runtime
from escrow_core.store.schema import idempotency_keys
from escrow_core.store.upsert import insert_or_ignore

MAX_KEY_LENGTH = 255
KEEP = timedelta(hours=24)
ABANDONED_AFTER = timedelta(seconds=60)
REPLAYED_HEADERS = ("etag", "location")

_c = idempotency_keys.c


def body_hash(raw: bytes) -> str:
    try:
        canonical = orjson.dumps(orjson.loads(raw or b"null"), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        canonical = raw
    return hashlib.sha256(canonical).hexdigest()


def stored(response: Response, body: Any = None) -> StoredResponse:
    """What a replay gives back: the status, the body (or ``body`` instead, to hide a secret)
    and the headers worth replaying."""
    headers = {name: value for name, value in response.headers.items() if name in REPLAYED_HEADERS}
    headers["content-type"] = response.media_type or "application/json"
    raw = bytes(response.body) if body is None else orjson.dumps(body)
    return StoredResponse(response.status_code, raw, headers)


@dataclass(frozen=True, slots=True)
class Claim:
    """This request holds the key until it records a response or releases it."""

    runtime: Runtime
    scope: str
    key: str

    def _where(self) -> sa.ColumnElement[bool]:
        return sa.and_(_c.scope == self.scope, _c.key == self.key)

    async def record(
        self, conn: AsyncConnection, response: Response, *, stored_body: Any = None
    ) -> None:
        """Store the response in the caller's transaction; ``stored_body`` replaces a secret."""
        await save_response(conn, self.scope, self.key, stored(response, stored_body))

    async def record_alone(self, response: Response) -> None:
        async with self.runtime.database.transaction() as conn:
            await self.record(conn, response)

    async def release(self) -> None:
        """Forget the claim: the request did not run, so a retry may."""
        async with self.runtime.database.transaction() as conn:
            await conn.execute(
                idempotency_keys.delete().where(self._where(), _c.status == "in_flight")
            )


_CLAIM_POSTGRESQL = """
INSERT INTO idempotency_keys (scope, key, body_hash, status, created_at, expires_at)
VALUES ($1, $2, $3, 'in_flight', $4, $5) ON CONFLICT (scope, key) DO NOTHING RETURNING 1
"""


async def _claim_fresh(runtime: Runtime, claim: Claim, digest: str, now: datetime) -> bool:
    async with runtime.database.raw() as connection:
        inserted = await connection.fetchval(
            _CLAIM_POSTGRESQL, claim.scope, claim.key, digest, now, now + KEEP
        )
    return inserted is not None


async def begin(request: Request, principal: Principal, key: str | None) -> Claim | Response | None:
    """Claim ``key`` for this request: a Claim to go on with, the stored Response to replay,
    or None when the request carries no key."""
    if key is None:
        return None
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ApiError(
            422,
            "invalid_idempotency_key",
            f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} characters.",
            errors=[
                {
                    "field": "Idempotency-Key",
                    "in": "header",
                    "code": "length",
                    "message": "1-255 characters",
                }
            ],
        )
    runtime: Runtime = request.app.state.runtime
    scope = f"{principal.scope}|{request.method}|{request.url.path}"
    digest = body_hash(await request.body())
    claim = Claim(runtime, scope, key)
    now = datetime.now(UTC)  # records live 24 h of real time, whatever a sandbox clock says
    if runtime.database.dialect == "postgresql" and await _claim_fresh(runtime, claim, digest, now):
        return claim  # the common case in one round trip; the rest below handles the others
    async with runtime.database.transaction() as conn:
        fresh = {
            "body_hash": digest,
            "status": "in_flight",
            "response_status": None,
            "response_body": None,
            "response_headers": None,
            "created_at": now,
            "expires_at": now + KEEP,
        }
        insert = insert_or_ignore(runtime.database.dialect, idempotency_keys, ["scope", "key"])
        if (await conn.execute(insert.values(scope=scope, key=key, **fresh))).rowcount == 1:
            return claim
        stale = sa.or_(
            _c.expires_at < now,
            sa.and_(_c.status == "in_flight", _c.created_at < now - ABANDONED_AFTER),
        )
        taken_over = await conn.execute(
            idempotency_keys.update().where(claim._where(), stale).values(**fresh)
        )
        if taken_over.rowcount == 1:
            return claim
        row = (await conn.execute(sa.select(idempotency_keys).where(claim._where()))).one()
    if row.body_hash != digest:
        raise ApiError(
            422,
            "idempotency_key_reused",
            "This Idempotency-Key was used with a different request body.",
        )
    if row.status == "in_flight":
        raise ApiError(
            409,
            "idempotency_key_in_flight",
            "A request with this Idempotency-Key is still being processed; retry shortly.",
        )
    headers = dict(row.response_headers or {})
    media_type = headers.pop("content-type", "application/json")
    headers["Idempotent-Replayed"] = "true"
    return Response(
        row.response_body.encode(),
        status_code=row.response_status,
        headers=headers,
        media_type=media_type,
    )
