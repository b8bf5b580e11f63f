"""``escrow``: serve, run the worker, migrate, make keys, rebuild and verify projections,
export a database to a file and import it into another."""

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import Progress, TaskID

from escrow_core import accounts
from escrow_core.accounts import KeyRole
from escrow_core.application.runtime import Runtime, open_runtime
from escrow_core.projections.rebuild import rebuild
from escrow_core.projections.verify import verify as verify_log
from escrow_core.settings import get_settings
from escrow_core.store import open_store, upgrade_to_head

if TYPE_CHECKING:
    from fastapi import FastAPI

app = typer.Typer(help="Event-sourced escrow service.", no_args_is_help=True)
projections_app = typer.Typer(help="Rebuild the read models.", no_args_is_help=True)
app.add_typer(projections_app, name="projections")
keys_app = typer.Typer(help="Make API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
console = Console(stderr=True)
T = TypeVar("T")


def _with_runtime(work: Callable[[Runtime], Awaitable[T]]) -> T:
    async def main() -> T:
        async with open_runtime(get_settings()) as runtime:
            return await work(runtime)

    return asyncio.run(main())


def served_app() -> "FastAPI":
    """The app ``escrow serve`` runs (a factory: uvicorn's worker processes import it), with
    the worker inside unless ``--no-worker`` (ESCROW_EMBEDDED_WORKER=false)."""
    from escrow_api.app import create_app
    from escrow_worker.worker import embedded

    settings = get_settings()
    return create_app(settings, background=embedded if settings.embedded_worker else None)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Do not run the worker in this process.")
    ] = False,
    workers: Annotated[int, typer.Option(min=1, help="Server processes (uvicorn workers).")] = 1,
) -> None:
    """Serve the HTTP API (with the worker inside unless --no-worker)."""
    import uvicorn

    if no_worker:
        os.environ["ESCROW_EMBEDDED_WORKER"] = "false"
    uvicorn.run(
        "escrow_cli.main:served_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        # httptools with a bound on the request head: uvicorn sets none of its own.
        http="escrow_api.http_protocol:BoundedHeadProtocol",
        log_config=None,
        access_log=False,
    )


@app.command()
def worker() -> None:
    """Run the worker: webhook delivery and deadline timers (stop with SIGTERM or Ctrl-C)."""
    from escrow_core import logs
    from escrow_worker.worker import run

    settings = get_settings()
    logs.configure(settings.log_level)
    asyncio.run(run(settings))


@app.command()
def migrate() -> None:
    """Bring the database schema to the latest migration."""
    url = get_settings().database_url
    asyncio.run(upgrade_to_head(url))
    console.print(f"migrated {url.split('@')[-1]}")


def _a(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


class CannotMakeKey(Exception):
    """A key the command line cannot make: said plainly, exit status 1."""


@keys_app.command("create")
def create_key(
    role: Annotated[
        KeyRole,
        typer.Option(
            help="admin, mediator or payments (no --party); buyer, supplier or agent (--party).",
            case_sensitive=False,
        ),
    ],
    party: Annotated[
        str | None,
        typer.Option(help="The party the key acts as, pty_...; its kind must be the role."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the key as the API shows it, in JSON.")
    ] = False,
) -> None:
    """Make an API key and print its id and secret: the secret is shown this once only."""
    if role in accounts.PARTYLESS_ROLES and party is not None:
        raise typer.BadParameter(f"{_a(role)} key has no party: leave out --party")
    if role not in accounts.PARTYLESS_ROLES and party is None:
        raise typer.BadParameter(f"{_a(role)} key acts as a party: name it with --party")

    async def work(runtime: Runtime) -> accounts.IssuedKey:
        if not await runtime.store.schema_is_current():
            raise CannotMakeKey("the database schema is not current: run escrow migrate")
        now = await runtime.store.now()
        async with runtime.store.transaction() as conn:
            if party is not None:
                found = await accounts.get_party(conn, party)
                if found is None:
                    raise CannotMakeKey(f"no party {party}")
                if found.kind.value != role.value:
                    raise CannotMakeKey(
                        f"{party} is {_a(found.kind)}: its keys have role {found.kind.value}, "
                        f"not {role.value}"
                    )
            return await accounts.create_api_key(
                conn, role=role, party_id=party, created_by="cli", now=now
            )

    try:
        issued = _with_runtime(work)
    except CannotMakeKey as error:
        console.print(f"error: {error}", style="red", markup=False, highlight=False)
        raise typer.Exit(code=1) from None
    key = issued.key
    if as_json:
        shown = {
            "id": key.id,
            "key": issued.secret,
            "role": key.role.value,
            "party_id": key.party_id,
            "created_at": key.created_at.isoformat().replace("+00:00", "Z"),
        }
        print(json.dumps(shown))
    else:
        print(f"id:  {key.id}")
        print(f"key: {issued.secret}")
    console.print("The secret is shown this once: store it now.", highlight=False)


@projections_app.command("rebuild")
def rebuild_projections() -> None:
    """Rebuild order_view and party_balances from the event log (stop the writers first)."""

    async def work(runtime: Runtime) -> int:
        total = await runtime.store.count_events()
        with Progress(console=console) as bar:
            task = bar.add_task("rebuilding", total=total)
            return await rebuild(runtime.store, progress=lambda n: bar.advance(task, n))

    console.print(f"rebuilt projections from {_with_runtime(work)} events")


@app.command()
def verify() -> None:
    """Replay every order, check the money invariant, compare the projections with the log."""

    async def work(runtime: Runtime) -> bool:
        total = await runtime.store.count_events()
        with Progress(console=console) as bar:
            task = bar.add_task("verifying", total=total)
            report = await verify_log(runtime.store, progress=lambda n: bar.advance(task, n))
        for problem in report.problems:
            # One line each, never wrapped (operators grep them), and never read as markup.
            console.print(problem, style="red", markup=False, highlight=False, soft_wrap=True)
        console.print(
            f"{report.orders} orders, {report.events} events: "
            + ("OK" if report.ok else f"{len(report.problems)} problems"),
            soft_wrap=True,
        )
        return report.ok

    if not _with_runtime(work):
        raise typer.Exit(code=1)


def _fail(error: Exception) -> typer.Exit:
    """Say what went wrong on one plain line; the exit status is 1."""
    console.print(f"error: {error}", style="red", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


def _counted(counts: dict[str, int]) -> str:
    return ", ".join(f"{count} {kind}" for kind, count in sorted(counts.items()))


@app.command("export")
def export_file(
    file: Annotated[Path, typer.Argument(help="Where to write (mode 0600: it holds secrets).")],
) -> None:
    """Write the log, parties, keys (hashes), webhook endpoints and checkpoints to FILE."""
    from escrow_core.application import transfer  # its file format costs every command 0.1 s

    async def work() -> dict[str, int]:
        # No upcasters: the log is exported as stored, and upcast when it is read again.
        store = open_store(get_settings().database_url)
        try:
            with Progress(console=console) as bar:
                task = bar.add_task("exporting", total=None)
                return await transfer.export_to(
                    store,
                    file,
                    started=lambda total: bar.update(task, total=total),
                    progress=lambda n: bar.advance(task, n),
                )
        finally:
            await store.dispose()

    try:
        counts = asyncio.run(work())
    except (transfer.TransferError, OSError) as error:
        raise _fail(error) from None
    console.print(f"exported {_counted(counts)} to {file}", soft_wrap=True, highlight=False)


@app.command("import")
def import_file(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="An export.")
    ],
) -> None:
    """Load FILE into an empty database (migrating it first) and rebuild the projections."""
    from escrow_core.application import transfer

    async def work(runtime: Runtime) -> dict[str, int]:
        with Progress(console=console) as bar:
            loading = bar.add_task("importing", total=file.stat().st_size)
            rebuilding: list[TaskID] = []  # shown once the rebuild starts

            def rebuilt(events: int) -> None:
                if not rebuilding:
                    rebuilding.append(bar.add_task("rebuilding", total=None))
                bar.advance(rebuilding[0], events)

            return await transfer.import_from(
                runtime.store, file, loading=lambda n: bar.advance(loading, n), rebuilding=rebuilt
            )

    try:
        counts = _with_runtime(work)
    except (transfer.TransferError, OSError) as error:
        raise _fail(error) from None
    console.print(f"imported {_counted(counts)}; projections rebuilt", soft_wrap=True)
