"""The ceiling: a bare FastAPI + uvicorn endpoint doing the least a command could do.

It validates a small body and runs one asyncpg transaction that inserts an event row and
upserts a projection row. Served and loaded exactly like ours (bench/run.py).
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
"""


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: int = Field(ge=1, le=10**12, strict=True)
    note: str = Field(default="", max_length=200)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    pool = await asyncpg.create_pool(DSN, min_size=5, max_size=10)
    async with pool.acquire() as conn:
        await conn.execute(SCHEMA)
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
