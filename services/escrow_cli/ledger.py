"""``escrow ledger export``: the ledger's posted transfers as CSV or Beancount."""

import sys
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Annotated, TextIO

import typer
from rich.progress import Progress

from escrow_core.application.ledger_export import Format, export_ledger
from escrow_core.application.runtime import Runtime

app = typer.Typer(help="Export the double-entry ledger.", no_args_is_help=True)


@app.command("export")
def export(
    format: Annotated[
        Format, typer.Option("--format", case_sensitive=False, help="csv or beancount.")
    ],
    since: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"],
            help="Transfers from this day on (UTC), after opening balances (Beancount).",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(dir_okay=False, help="Write here instead of to stdout.")
    ] = None,
) -> None:
    """Write the posted transfers (money that moved: no pending or voided legs), amounts in
    major units; progress goes to stderr."""
    # main imports this module to register it: its helpers are read when the command runs.
    from escrow_cli.main import _fail, _with_runtime, console

    async def work(runtime: Runtime) -> int:
        with ExitStack() as files, Progress(console=console, transient=out is None) as bar:
            target: TextIO = (
                sys.stdout
                if out is None
                else files.enter_context(out.open("w", encoding="utf-8", newline=""))
            )
            task = bar.add_task("exporting postings", total=None)
            return await export_ledger(
                runtime.store,
                target,
                format,
                since=None if since is None else since.date(),
                progress=lambda n: bar.advance(task, n),
            )

    try:
        written = _with_runtime(work)
    except (OSError, ValueError) as error:
        raise _fail(error) from None
    where = "stdout" if out is None else str(out)
    console.print(f"exported {written} postings to {where}", soft_wrap=True, highlight=False)
