"""The ceilings: bare FastAPI + uvicorn endpoints doing the least a command or a read could do.

    POST /v1/things/{id}   validates a small body and runs one asyncpg transaction that inserts
                           an event row and upserts a projection row
    GET /v1/docs/{id}      reads one row by primary key and returns its JSON document (one of
                           DOCS rows seeded on start, each the size of a stored order's state)

Served and loaded exactly like ours (bench/run.py).
"""

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import orjson
from fastapi import FastAPI, Response
from pydantic import BaseModel, ConfigDict, Field

DSN = os.environ.get("CEILING_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")

SCHEMA = """
CREATE TABLE IF NOT EXISTS ceiling_events (
    position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id text NOT NULL, version integer NOT NULL, event_id uuid NOT NULL UNIQUE,
    type text NOT NULL, data jsonb NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (stream_id, version));
CREATE TABLE IF NOT EXISTS ceiling_view (
    stream_id text PRIMARY KEY, version integer NOT NULL, total bigint NOT NULL);
CREATE TABLE IF NOT EXISTS ceiling_docs (id text PRIMARY KEY, document jsonb NOT NULL);
"""
DOCS = 200


def document(n: int) -> dict[str, object]:
    """About the size of an order's stored state document (~6.5 KiB of JSON)."""
    return {
        "id": f"doc-{n}",
        "version": 6,
        "status": "completed",
        "items": [
            {"sku": f"SKU-{i}", "description": "item " * 8, "quantity": i, "unit_price": 1000}
            for i in range(20)
        ],
        "amounts": {name: 100_000 for name in ("total", "paid", "held", "released", "fees")},
        "shipment": {"carrier": "DHL", "tracking_number": "1234567890", "shipped_at": "2026"},
        "history": [{"at": "2026-11-27T00:00:00+00:00", "step": i} for i in range(40)],
    }


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: int = Field(ge=1, le=10**12, strict=True)
    note: str = Field(default="", max_length=200)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    pool = await asyncpg.create_pool(DSN, min_size=5, max_size=10)
    async with pool.acquire() as conn:
        await conn.execute(SCHEMA)
        await conn.executemany(
            "INSERT INTO ceiling_docs (id, document) VALUES ($1, $2::jsonb) "
            "ON CONFLICT (id) DO NOTHING",
            [(f"doc-{n}", orjson.dumps(document(n)).decode()) for n in range(DOCS)],
        )
    app.state.pool = pool
    yield
    await pool.close()


app = FastAPI(lifespan=lifespan)


@app.post("/v1/things/{stream_id}")
async def command(stream_id: str, body: Command) -> Response:
    async with app.state.pool.acquire() as conn, conn.transaction():
        version = await conn.fetchval(
            "INSERT INTO ceiling_view AS v (stream_id, version, total) VALUES ($1, 1, $2) "
            "ON CONFLICT (stream_id) DO UPDATE SET version = v.version + 1, "
            "total = v.total + EXCLUDED.total RETURNING version",
            stream_id,
            body.amount,
        )
        await conn.execute(
            "INSERT INTO ceiling_events (stream_id, version, event_id, type, data) "
            "VALUES ($1, $2, $3, 'thing.happened', $4::jsonb)",
            stream_id,
            version,
            uuid.uuid4(),
            orjson.dumps(body.model_dump()).decode(),
        )
    return Response(
        orjson.dumps({"id": stream_id, "version": version}), media_type="application/json"
    )


@app.get("/v1/docs/{doc_id}")
async def read(doc_id: str) -> Response:
    async with app.state.pool.acquire() as conn:
        text = await conn.fetchval("SELECT document::text FROM ceiling_docs WHERE id = $1", doc_id)
    if text is None:
        return Response(status_code=404)
    return Response(text, media_type="application/json")
