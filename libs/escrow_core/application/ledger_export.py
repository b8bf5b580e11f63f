"""``escrow ledger export``: the ledger's posted transfers, streamed from the store in batches
to CSV or Beancount (formats: ``escrow_core.projections.ledger_export``)."""

import csv
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import TextIO

from escrow_core.projections import ledger_export as fmt
from escrow_core.store import Store

BATCH_SIZE = 5000


class Format(StrEnum):
    CSV = "csv"
    BEANCOUNT = "beancount"


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


async def export_ledger(
    store: Store,
    out: TextIO,
    kind: Format,
    *,
    since: date | None = None,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] = lambda n: None,
) -> int:
    """Write the posted legs (from the day ``since``, UTC, after opening balances in
    Beancount) to ``out``; ``progress`` is told the postings read. Returns the legs written."""
    start = None if since is None else _start_of(since)
    written = 0
    postings = store.all_postings(batch_size=batch_size, since=start)
    if kind is Format.CSV:
        rows = csv.writer(out, lineterminator="\n")
        rows.writerow(fmt.CSV_HEADER)
        async for batch in postings:
            moved = [p for p in batch if fmt.exported(p)]
            rows.writerows(fmt.csv_row(p) for p in moved)
            written += len(moved)
            progress(len(batch))
        return written
    book = fmt.BeancountFile()
    transfers = fmt.Transfers()
    out.write(book.header("Escrow ledger" + ("" if since is None else f" from {since}")))
    if since is not None:
        out.write(book.opening(since, await store.account_balances(None, before=start)))
    async for batch in postings:
        for legs in transfers.feed(batch):
            out.write(book.transfer(legs))
            written += len(legs)
        progress(len(batch))
    for legs in transfers.rest():
        out.write(book.transfer(legs))
        written += len(legs)
    out.write(book.opens())
    return written
