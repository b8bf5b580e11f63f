"""``escrow export FILE`` and ``escrow import FILE`` (DESIGN 7.4, 7.7): a database to one file
(``transfer_format``) and back into an empty database, on either backend.

Both stream: the log is read in commit-order batches and written line by line, and read back
line by line into batches, so neither side holds the whole log. An import is one transaction
(a file cut short or refused leaves the database as it was), then the projections are rebuilt
from the imported log, as ``escrow projections rebuild`` does.
"""

import os
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson
import sqlalchemy as sa
from pydantic import ValidationError

from escrow_core.application import transfer_format as f
from escrow_core.projections.rebuild import rebuild
from escrow_core.store import Checkpoint, RecordedEvent, Store, upgrade_to_head
from escrow_core.store import transfer as tables

BATCH_SIZE = 1000
Progress = Callable[[int], None]


def _nothing(_: int) -> None:
    """No progress to show."""


class TransferError(Exception):
    """An export or import that cannot go on; the message says why, for an operator."""


class ImportRefused(TransferError):
    """The database or the file is not one an import may combine."""


class BadFile(TransferError):
    """A line of the file that is not what an export writes there."""

    def __init__(self, line: int, why: str) -> None:
        super().__init__(f"line {line}: {why}")


@dataclass
class CheckpointPlace:
    """A log reader's checkpoint, turned into a position of the imported log.

    The file's log is in commit order: on PostgreSQL (transaction, position) order, where an
    event may have a smaller position than one committed before it. The import writes the whole
    log in one transaction, so there commit order is position order. A reader's place becomes
    the position just before the first event it had not read yet: nothing unread is skipped,
    and what it had read beyond that is read again (webhooks are at least once; their ids let a
    subscriber drop the repeat). A reader that had caught up stands at the last position.
    """

    at: Checkpoint
    first_unread: int | None = None
    last_position: int = 0

    def saw(self, event: RecordedEvent) -> None:
        self.last_position = max(self.last_position, event.position)
        if event.checkpoint > self.at:
            self.first_unread = min(self.first_unread or event.position, event.position)

    @property
    def position(self) -> int:
        return self.last_position if self.first_unread is None else self.first_unread - 1


# --- export -------------------------------------------------------------------------------
async def export_to(
    store: Store, path: Path, *, started: Progress = _nothing, progress: Progress = _nothing
) -> dict[str, int]:
    """Write the database to ``path`` (mode 0600: it holds webhook secrets); returns how many
    records of each kind. The file appears whole or not at all. ``started`` is told how many
    events the log holds, ``progress`` how many more were written."""
    if not await store.schema_is_current():
        raise TransferError("the database schema is not current: run escrow migrate first")
    started(await store.count_events())
    # mkstemp makes the file 0600 whatever the umask, beside the target so the rename is atomic.
    descriptor, partial = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".partial"
    )
    try:
        with os.fdopen(descriptor, "wb") as out:
            counts = await _write(store, out, progress)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    except BaseException:
        os.remove(partial)
        raise
    return counts


async def _write(store: Store, out: IO[bytes], progress: Progress) -> dict[str, int]:
    counts: Counter[str] = Counter()

    def write(record: f.Record) -> None:
        out.write(f.encode(record))
        counts[record.kind] += 1

    async with store.read() as conn:
        revision = await tables.schema_revision(conn)
    out.write(f.encode(f.header(revision, store.dialect, datetime.now(UTC))))
    # Checkpoints and pending deliveries are read before the log, so the log holds every event
    # they name (whole_log reads at least all that was committed before it started).
    places = {
        name: CheckpointPlace(Checkpoint(*pair))
        for name, pair in (await tables.checkpoints(store)).items()
    }
    write(f.Clock(offset_seconds=await tables.clock_offset(store)))
    for record_type, pages in (
        (f.Party, tables.party_pages(store, managed=False, size=BATCH_SIZE)),
        (f.Party, tables.party_pages(store, managed=True, size=BATCH_SIZE)),
        (f.ApiKey, tables.key_pages(store, size=BATCH_SIZE)),
        (f.WebhookEndpoint, tables.endpoint_pages(store, size=BATCH_SIZE)),
        (f.WebhookDelivery, tables.pending_delivery_pages(store, size=BATCH_SIZE)),
    ):
        async for rows in pages:
            for row in rows:
                write(record_type.from_row(row))
    async for batch in store.whole_log(batch_size=BATCH_SIZE):
        for event in batch:
            write(_event_record(event))
            for place in places.values():
                place.saw(event)
        progress(len(batch))
    for name, place in sorted(places.items()):
        write(f.Checkpoint(name=name, position=place.position))
    out.write(f.encode(f.End(counts=dict(counts))))
    return dict(counts)


def _event_record(event: RecordedEvent) -> f.Event:
    # The transaction id stays behind: it names a transaction of this database only.
    return f.Event(
        position=event.position,
        stream_id=event.stream_id,
        version=event.version,
        event_id=event.event_id,
        type=event.type,
        schema_version=event.schema_version,
        data=event.data,
        metadata=event.metadata,
        recorded_at=event.recorded_at,
    )


# --- import -------------------------------------------------------------------------------
async def import_from(
    store: Store,
    path: Path,
    *,
    loading: Progress = _nothing,
    rebuilding: Progress = _nothing,
) -> dict[str, int]:
    """Load ``path`` into the empty database of ``store`` (migrated first if need be), then
    rebuild the projections; returns how many records of each kind went in. ``loading`` is
    told the bytes read, ``rebuilding`` the events replayed."""
    with path.open("rb") as file:
        header = _header(file.readline())
        loading(file.tell())
        held = {name: count for name, count in (await tables.contents(store)).items() if count}
        if held:
            what = ", ".join(f"{count} {name}" for name, count in held.items())
            raise ImportRefused(
                f"the database is not empty (it holds {what}): import only into an empty one"
            )
        # The migrations run on connections of their own: none of ours stays open meanwhile.
        await store.dispose()
        await upgrade_to_head(store.url)
        async with store.read() as conn:
            revision = await tables.schema_revision(conn)
        if header.schema_revision != revision:
            raise ImportRefused(
                f"the file was exported at schema revision {header.schema_revision} and this "
                f"database is at {revision}: import it with the release that exported it"
            )
        counts = await _load(store, file, loading)
    await rebuild(store, progress=rebuilding)
    return counts


def _header(line: bytes) -> f.Header:
    """The file's first line, if it is a header of the format version this release reads."""
    try:
        claimed = orjson.loads(line)
    except orjson.JSONDecodeError:
        claimed = None
    if not isinstance(claimed, dict) or claimed.get("format") != f.FORMAT:
        raise BadFile(1, f"not an escrow export: the first line is not its {f.FORMAT} header")
    if claimed.get("format_version") != f.FORMAT_VERSION:
        raise ImportRefused(
            f"the file is in export format version {claimed.get('format_version')!r}; this "
            f"release reads version {f.FORMAT_VERSION}"
        )
    try:
        record = f.decode(line)
    except ValidationError as error:
        raise BadFile(1, _first_error(error)) from None
    if not isinstance(record, f.Header):
        raise BadFile(1, f"not an escrow export: the first line is not its {f.FORMAT} header")
    return record


async def _load(store: Store, file: IO[bytes], loading: Progress) -> dict[str, int]:
    """Every record after the header, in one transaction; see the module docstring."""
    counts: Counter[str] = Counter()
    places: list[f.Checkpoint] = []
    end: f.End | None = None
    pending: list[dict[str, Any]] = []
    pending_table: str | None = None
    first = last = number = 1  # the lines of the pending rows, and the line read
    async with store.transaction() as conn:

        async def flush() -> None:
            if pending_table is not None and pending:
                try:
                    await tables.restore(conn, store, pending_table, pending)
                except sa.exc.DBAPIError as error:
                    raise TransferError(
                        f"lines {first}-{last}: the database refused one of these "
                        f"{pending_table} rows: {error.orig}"
                    ) from None
            pending.clear()

        for number, line in enumerate(file, start=2):
            loading(len(line))
            if end is not None:
                raise BadFile(number, "a record after the end record")
            try:
                record = f.decode(line)
            except ValidationError as error:
                raise BadFile(number, _first_error(error)) from None
            if isinstance(record, f.Header):
                raise BadFile(number, "a second header")
            if isinstance(record, f.End):
                end = record
                continue
            counts[record.kind] += 1
            if isinstance(record, f.Clock):
                await tables.set_clock(conn, record.offset_seconds)
            elif isinstance(record, f.Checkpoint):
                places.append(record)
            else:
                if record.table != pending_table or len(pending) >= BATCH_SIZE:
                    await flush()
                    pending_table, first = record.table, number
                pending.append(record.row())
                last = number
        await flush()
        if end is None:
            raise BadFile(number, "the file ends without its end record: it was cut short")
        if dict(counts) != end.counts:
            raise BadFile(
                number, f"the end record counts {end.counts}, the file holds {dict(counts)}"
            )
        # Every imported event is this transaction's: a reader past any of them names it.
        writer = await store.writer_transaction_id(conn)
        for place in places:
            at = writer if place.position else 0
            await tables.set_checkpoint(conn, store, place.name, at, place.position)
    return dict(counts)


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])
