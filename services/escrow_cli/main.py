"""``escrow``: serve, run the worker, migrate, make keys, rebuild and verify projections,
export a database to a file and import it into another, export the ledger (``ledger.py``)."""

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import sqlalchemy as sa
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import Progress, TaskID

from escrow_cli import ledger
from escrow_core import accounts
from escrow_core.accounts import KeyRole, KeyScope
from escrow_core.application.runtime import Runtime, open_runtime
from escrow_core.gc_policy import collect_rarely_in_full
from escrow_core.projections.rebuild import rebuild
from escrow_core.projections.verify import verify as verify_log
from escrow_core.settings import Settings, get_settings
from escrow_core.store import Store, StoreUnavailable, open_store, upgrade_to_head
from escrow_core.store.errors import unavailable

if TYPE_CHECKING:
    from fastapi import FastAPI


def _default(value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def _settings_help() -> str:
    """Every setting's environment variable and default, for ``escrow --help``."""
    named = [
        f"ESCROW_{name.upper()} ({_default(field.get_default(call_default_factory=True))})"
        for name, field in Settings.model_fields.items()
    ]
    return "Settings come from the environment: " + ", ".join(named) + "."


app = typer.Typer(
    help="Event-sourced escrow service.", epilog=_settings_help(), no_args_is_help=True
)
projections_app = typer.Typer(help="Rebuild the read models.", no_args_is_help=True)
app.add_typer(projections_app, name="projections")
keys_app = typer.Typer(help="Make API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(ledger.app, name="ledger")
console = Console(stderr=True)
T = TypeVar("T")


def _print_version(wanted: bool) -> None:
    if wanted:
        print(f"escrow {package_version('escrow')}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Event-sourced escrow service."""
    collect_rarely_in_full()


def _fail(error: Exception | str) -> typer.Exit:
    """Say what went wrong on one plain line; the exit status is 1."""
    console.print(f"error: {error}", style="red", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


def _settings() -> Settings:
    """The settings from the environment: each bad one is named on a line of its own, exit 1."""
    try:
        return get_settings()
    except ValidationError as invalid:
        for problem in invalid.errors():
            name = f"ESCROW_{str(problem['loc'][0]).upper()}" if problem["loc"] else "settings"
            console.print(
                f"error: {name}: {problem['msg'].removeprefix('Value error, ')}",
                style="red",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        raise typer.Exit(code=1) from None


def _shown(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)


class NotUsable(Exception):
    """The database cannot be used as it is (away, or behind the code): one line, exit 1."""


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


async def _require_migrated(store: Store) -> None:
    try:
        current = await store.schema_is_current()
    except Exception as error:  # whatever keeps us from reading it, the operator reads why
        where = _shown(store.url)
        raise NotUsable(f"cannot use the database at {where}: {_first_line(error)}") from error
    if not current:
        raise NotUsable(
            f"the database at {_shown(store.url)} is not migrated to this version of escrow: "
            "run escrow migrate"
        )


def _with_runtime(work: Callable[[Runtime], Awaitable[T]], *, migrated: bool = True) -> T:
    """Run ``work`` on the database of the settings; unless ``migrated=False``, only on a
    database at the latest migration."""

    async def run() -> T:
        async with open_runtime(_settings()) as runtime:
            if migrated:
                await _require_migrated(runtime.store)
            return await work(runtime)

    try:
        return asyncio.run(run())
    except NotUsable as error:
        raise _fail(error) from None
    except StoreUnavailable as error:
        raise _fail(f"the database went away: {_first_line(error)}") from None


def _refuse_unless_migrated() -> None:
    """Exit 1 with a one-line reason unless the database answers and is migrated."""

    async def nothing(runtime: Runtime) -> None:
        return None

    _with_runtime(nothing)


def served_app() -> "FastAPI":
    """The app ``escrow serve`` runs (a factory: uvicorn's worker processes import it), with
    the worker inside unless ``--no-worker`` (ESCROW_EMBEDDED_WORKER=false)."""
    from escrow_api.app import create_app
    from escrow_worker.worker import embedded

    settings = get_settings()
    return create_app(settings, background=embedded if settings.embedded_worker else None)


# Longer than any client's or proxy's idle expiry (httpx 5 s, nginx 60 s, AWS ALB 60 s), so the
# client ends an idle connection first: uvicorn's own 5 s equals httpx's, and a request sent
# just as the server closes meets a reset (an httpx.ReadError) though nothing went wrong.
KEEP_ALIVE_SECONDS = 75


@app.command()
def serve(
    host: Annotated[str, typer.Option(envvar="ESCROW_HOST", help="Address to bind.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(envvar="ESCROW_PORT", help="Port to bind.")] = 8000,
    embedded_worker: Annotated[
        bool,
        typer.Option(
            "--worker/--no-worker",
            envvar="ESCROW_EMBEDDED_WORKER",
            help="Run the worker in this process (production runs escrow worker apart).",
        ),
    ] = True,
    workers: Annotated[
        int,
        typer.Option(min=1, envvar="ESCROW_WORKERS", help="Server processes (uvicorn workers)."),
    ] = 1,
    keep_alive: Annotated[
        int,
        typer.Option(
            min=1,
            envvar="ESCROW_KEEP_ALIVE_SECONDS",
            help="Seconds an idle connection is kept open.",
        ),
    ] = KEEP_ALIVE_SECONDS,
) -> None:
    """Serve the HTTP API (with the worker inside unless --no-worker).

    Refuses to start, with a one-line reason, on a database that is not migrated."""
    import uvicorn

    from escrow_cli.metrics_dir import shared_metrics

    _refuse_unless_migrated()
    # The app factory reads the settings again, in this process or in uvicorn's workers.
    os.environ["ESCROW_EMBEDDED_WORKER"] = str(embedded_worker).lower()
    get_settings.cache_clear()
    with shared_metrics(workers):  # /metrics sums the N processes
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
            timeout_keep_alive=keep_alive,
            # A worker process answers the supervisor's ping only once it has imported this
            # CLI again (spawn): seconds on a busy host, past uvicorn's 5 s, and a worker
            # killed for it is started again and killed again, for good.
            timeout_worker_healthcheck=30,
        )


@app.command()
def worker(
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=1, max=65_535, help="Serve /metrics on this port (ESCROW_METRICS_PORT; off)."
        ),
    ] = None,
    metrics_host: Annotated[
        str | None,
        typer.Option(help="Address for /metrics (ESCROW_METRICS_HOST; 127.0.0.1)."),
    ] = None,
) -> None:
    """Run the worker: webhook delivery and deadline timers (stop with SIGTERM or Ctrl-C).

    Refuses to start, with a one-line reason, on a database that is not migrated."""
    from escrow_core import logs
    from escrow_worker.metrics_server import MetricsUnavailable
    from escrow_worker.worker import run

    chosen = {"metrics_port": metrics_port, "metrics_host": metrics_host}
    settings = _settings().model_copy(update={k: v for k, v in chosen.items() if v is not None})
    _refuse_unless_migrated()
    logs.configure(settings.log_level)
    try:
        asyncio.run(run(settings))
    except MetricsUnavailable as error:
        raise _fail(error) from None


@app.command()
def migrate() -> None:
    """Bring the database schema to the latest migration."""
    url = _settings().database_url
    try:
        asyncio.run(upgrade_to_head(url))
    except Exception as error:
        if unavailable(error):
            raise _fail(
                f"cannot reach the database at {_shown(url)}: {_first_line(error)}"
            ) from None
        if isinstance(error, sa.exc.DBAPIError):  # the database said no: its words are enough
            raise _fail(
                f"cannot migrate the database at {_shown(url)}: {_first_line(error)}"
            ) from None
        raise  # a migration's own bug: its traceback is what its author needs
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
    scope: Annotated[
        KeyScope,
        typer.Option(
            help="full (default), or read: a key that may only read.", case_sensitive=False
        ),
    ] = KeyScope.FULL,
    expires_at: Annotated[
        datetime | None,
        typer.Option(
            help="When the key stops working, an ISO 8601 date-time (UTC unless it names an "
            "offset); it must be in the future.",
            formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"],
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the key as the API shows it, in JSON.")
    ] = False,
) -> None:
    """Make an API key and print its id and secret: the secret is shown this once only."""
    if expires_at is not None and expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    if role in accounts.PARTYLESS_ROLES and party is not None:
        raise typer.BadParameter(f"{_a(role)} key has no party: leave out --party")
    if role not in accounts.PARTYLESS_ROLES and party is None:
        raise typer.BadParameter(f"{_a(role)} key acts as a party: name it with --party")

    async def work(runtime: Runtime) -> accounts.IssuedKey:
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
            if expires_at is not None and expires_at <= now:
                raise CannotMakeKey("--expires-at is not in the future")
            return await accounts.create_api_key(
                conn,
                role=role,
                party_id=party,
                created_by="cli",
                now=now,
                scope=scope,
                expires_at=expires_at,
            )

    try:
        issued = _with_runtime(work)
    except CannotMakeKey as error:
        raise _fail(error) from None
    key = issued.key
    if as_json:
        shown = {
            "id": key.id,
            "key": issued.secret,
            "role": key.role.value,
            "party_id": key.party_id,
            "scope": key.scope.value,
            "created_at": key.created_at.isoformat().replace("+00:00", "Z"),
            "expires_at": (
                key.expires_at.isoformat().replace("+00:00", "Z") if key.expires_at else None
            ),
        }
        print(json.dumps(shown))
    else:
        print(f"id:  {key.id}")
        print(f"key: {issued.secret}")
    console.print("The secret is shown this once: store it now.", highlight=False)


@projections_app.command("rebuild")
def rebuild_projections() -> None:
    """Rebuild the projections from the event log: order_view, party_balances, the ledger,
    payouts and refunds, and supplier performance (stop the writers first)."""

    async def work(runtime: Runtime) -> int:
        total = await runtime.store.count_events()
        with Progress(console=console) as bar:
            task = bar.add_task("rebuilding", total=total)
            return await rebuild(runtime.store, progress=lambda n: bar.advance(task, n))

    console.print(f"rebuilt projections from {_with_runtime(work)} events")


@app.command()
def verify() -> None:
    """Replay every order, check the money invariants, compare the projections (the ledger,
    payouts and refunds too) with the log."""

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
        store = open_store(_settings().database_url)
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
        counts = _with_runtime(work, migrated=False)  # it migrates an empty database itself
    except (transfer.TransferError, OSError) as error:
        raise _fail(error) from None
    console.print(f"imported {_counted(counts)}; projections rebuilt", soft_wrap=True)
