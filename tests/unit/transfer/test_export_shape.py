"""The export's decisions that need no database: which tables travel, the records' round trip,
and where a log reader's checkpoint lands in the imported log."""

import uuid
from datetime import UTC, datetime

from escrow_core.application import transfer_format as f
from escrow_core.application.transfer import CheckpointPlace
from escrow_core.store import Checkpoint, RecordedEvent
from escrow_core.store import transfer as tables
from escrow_core.store.schema import metadata

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_every_table_is_carried_or_left_behind_for_a_reason() -> None:
    carried, left = set(tables.CARRIED), set(tables.LEFT_BEHIND)

    assert carried | left == set(metadata.tables)
    assert not carried & left
    assert all(reason.strip() for reason in tables.LEFT_BEHIND.values())


def test_a_party_keeps_its_kind_apart_from_the_records_kind() -> None:
    row = {
        "id": "pty_1",
        "kind": "supplier",
        "name": "Shenzhen LED Co.",
        "trade_assurance": True,
        "managed_by": "pty_agent",
        "created_at": NOW,
        "metadata": {"erp_id": "V-1"},
        "deactivated_at": NOW,
    }

    record = f.Party.from_row(row)
    read_back = f.decode(f.encode(record))

    assert record.kind == "party"
    assert record.party_kind == "supplier"
    assert read_back == record
    assert read_back.row() == row
    # A file written before parties had metadata (migration 0007) reads as none, active.
    before = f.Party.from_row(
        {k: v for k, v in row.items() if k not in ("metadata", "deactivated_at")}
    )
    assert before.row() == {**row, "metadata": {}, "deactivated_at": None}


def event(position: int, transaction_id: int) -> RecordedEvent:
    return RecordedEvent(
        position=position,
        stream_id="ord_1",
        version=position,
        event_id=uuid.uuid4(),
        type="order.placed",
        schema_version=1,
        data={},
        metadata={},
        recorded_at=NOW,
        transaction_id=transaction_id,
    )


def test_a_reader_that_read_everything_stands_at_the_last_position() -> None:
    place = CheckpointPlace(Checkpoint(101, 3))

    for recorded in (event(1, 100), event(2, 100), event(3, 101)):
        place.saw(recorded)

    assert place.position == 3


def test_a_reader_at_the_start_stays_at_the_start() -> None:
    place = CheckpointPlace(Checkpoint(0, 0))

    for recorded in (event(1, 100), event(2, 100)):
        place.saw(recorded)

    assert place.position == 0


def test_an_event_committed_late_with_a_smaller_position_is_read_again_not_skipped() -> None:
    # Commit order (transaction, position): 1, 3 (transaction 100), then 2 (transaction 101,
    # which took its position first and committed last). The reader stands after 3.
    place = CheckpointPlace(Checkpoint(100, 3))

    for recorded in (event(1, 100), event(3, 100), event(2, 101), event(4, 102)):
        place.saw(recorded)

    # Imported, the log is in position order: the reader goes back to just before 2, so 2
    # (never read) is not skipped; 3 is read again.
    assert place.position == 1
