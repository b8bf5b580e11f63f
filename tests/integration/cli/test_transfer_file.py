"""``escrow import`` refuses a file it cannot trust, plainly and before writing anything: not
an export, a newer format, another schema revision, a bad line (named by its number)."""

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from escrow_core.application.transfer import BadFile, ImportRefused, TransferError, import_from
from escrow_core.store import Store
from escrow_core.store.schema import parties
from escrow_core.store.transfer import schema_revision


async def header(store: Store, **changes: Any) -> dict[str, Any]:
    async with store.read() as conn:
        revision = await schema_revision(conn)
    return {
        "kind": "header",
        "format": "escrow-export",
        "format_version": 1,
        "schema_revision": revision,
        "source": "postgresql",
        "exported_at": "2026-11-27T12:00:00Z",
        **changes,
    }


PARTY = {
    "kind": "party",
    "id": "pty_imported",
    "party_kind": "buyer",
    "name": "Imported Co.",
    "trade_assurance": False,
    "managed_by": None,
    "created_at": "2026-11-27T12:00:00Z",
}


def write(path: Path, *lines: dict[str, Any] | str) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


async def party_count(store: Store) -> int:
    async with store.read() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(parties)) or 0)


async def test_a_whole_small_file_goes_in(fresh_store: Store, tmp_path: Path) -> None:
    end = {"kind": "end", "counts": {"party": 1}}
    file = write(tmp_path / "ok.jsonl", await header(fresh_store), PARTY, end)

    assert await import_from(fresh_store, file) == {"party": 1}
    assert await party_count(fresh_store) == 1


async def test_a_file_that_is_no_export_is_refused(fresh_store: Store, tmp_path: Path) -> None:
    file = write(tmp_path / "notes.txt", "order 17 shipped")

    with pytest.raises(BadFile, match="line 1: not an escrow export"):
        await import_from(fresh_store, file)


async def test_a_newer_format_is_refused(fresh_store: Store, tmp_path: Path) -> None:
    file = write(tmp_path / "v2.jsonl", await header(fresh_store, format_version=2, extra=1))

    with pytest.raises(ImportRefused, match="export format version 2; this release reads"):
        await import_from(fresh_store, file)


async def test_another_schema_revision_is_refused(fresh_store: Store, tmp_path: Path) -> None:
    file = write(tmp_path / "old.jsonl", await header(fresh_store, schema_revision="0003_webhooks"))

    with pytest.raises(ImportRefused, match="exported at schema revision 0003_webhooks"):
        await import_from(fresh_store, file)


async def test_a_bad_line_is_named_and_nothing_goes_in(fresh_store: Store, tmp_path: Path) -> None:
    bad = {**PARTY, "id": "pty_second", "created_at": "yesterday"}
    end = {"kind": "end", "counts": {"party": 2}}
    file = write(tmp_path / "bad.jsonl", await header(fresh_store), PARTY, bad, end)

    with pytest.raises(BadFile, match=r"line 3: party\.created_at: Input should be"):
        await import_from(fresh_store, file)
    assert await party_count(fresh_store) == 0


async def test_rows_the_database_refuses_are_named(fresh_store: Store, tmp_path: Path) -> None:
    managed = {**PARTY, "id": "pty_managed", "managed_by": "pty_nobody"}
    end = {"kind": "end", "counts": {"party": 1}}
    file = write(tmp_path / "orphan.jsonl", await header(fresh_store), managed, end)

    with pytest.raises(TransferError, match="lines 2-2: the database refused one of these parties"):
        await import_from(fresh_store, file)
    assert await party_count(fresh_store) == 0


async def test_a_file_cut_short_imports_nothing(fresh_store: Store, tmp_path: Path) -> None:
    file = write(tmp_path / "cut.jsonl", await header(fresh_store), PARTY)

    with pytest.raises(BadFile, match="line 2: the file ends without its end record"):
        await import_from(fresh_store, file)
    assert await party_count(fresh_store) == 0


async def test_an_end_record_that_disagrees_is_refused(fresh_store: Store, tmp_path: Path) -> None:
    end = {"kind": "end", "counts": {"party": 2}}
    file = write(tmp_path / "short.jsonl", await header(fresh_store), PARTY, end)

    with pytest.raises(BadFile, match="the end record counts"):
        await import_from(fresh_store, file)
    assert await party_count(fresh_store) == 0
