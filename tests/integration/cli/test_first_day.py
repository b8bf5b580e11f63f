"""``escrow`` on an integrator's first day: what it says when the database is not migrated or a
setting is wrong (one line each, exit 1, never a traceback), the URL forms it accepts, its
version, and the environment variables its help names."""

import asyncio
import subprocess
from importlib.metadata import version

import pytest
from typer.testing import CliRunner

from escrow_cli.main import app
from escrow_core.settings import Settings, get_settings
from escrow_core.store import open_store
from support.processes import free_port, run_cli


def escrow_once(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``escrow ARGS`` as a process; a command that should refuse at once gets 60 s at most."""
    return run_cli(*args, env=env, timeout=60)


async def schema_is_current(url: str) -> bool:
    store = open_store(url)
    try:
        return await store.schema_is_current()
    finally:
        await store.dispose()


async def test_nothing_runs_on_an_unmigrated_database(empty_database_url: str) -> None:
    # Given a database with no schema
    env = {"ESCROW_DATABASE_URL": empty_database_url}
    commands = [
        ("verify",),
        ("projections", "rebuild"),
        ("serve", "--host", "127.0.0.1", "--port", str(free_port())),
        ("worker",),
    ]

    # When each command that needs the schema is run on it
    results = await asyncio.gather(
        *(asyncio.to_thread(escrow_once, *command, env=env) for command in commands)
    )

    # Then each refuses on one line naming the way out, and nothing started or migrated
    for command, result in zip(commands, results, strict=True):
        assert result.returncode == 1, (command, result.stderr)
        [line] = result.stderr.strip().splitlines()
        assert line.startswith("error: the database at "), (command, line)
        assert line.endswith("is not migrated to this version of escrow: run escrow migrate")
        assert result.stdout == ""
    assert not await schema_is_current(empty_database_url)


async def test_a_plain_database_url_is_migrated_through_the_async_driver(
    empty_database_url: str,
) -> None:
    # Given the URL as a hosting provider hands it out: postgres:// or sqlite:///
    plain = empty_database_url.replace("postgresql+asyncpg://", "postgres://").replace(
        "sqlite+aiosqlite://", "sqlite://"
    )
    assert plain != empty_database_url

    # When the operator migrates with it
    migrated = await asyncio.to_thread(escrow_once, "migrate", env={"ESCROW_DATABASE_URL": plain})

    # Then the database it names is at the latest migration
    assert migrated.returncode == 0, migrated.stderr
    assert await schema_is_current(empty_database_url)


def test_each_bad_setting_is_one_line_naming_it_without_its_value() -> None:
    # Given a URL of an unsupported database, a log level out of the set, a short admin key
    env = {
        "ESCROW_DATABASE_URL": "mysql://root:hunter2hunter2@db/escrow",
        "ESCROW_LOG_LEVEL": "verbose",
        "ESCROW_ADMIN_KEY": "tooshort",
    }

    # When any command starts
    result = escrow_once("verify", env=env)

    # Then it exits 1 with one line per bad setting, showing neither password nor key
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert [line.split(":")[0:2] for line in lines] == [
        ["error", " ESCROW_DATABASE_URL"],
        ["error", " ESCROW_ADMIN_KEY"],
        ["error", " ESCROW_LOG_LEVEL"],
    ]
    assert "unsupported database 'mysql'" in lines[0]
    assert "at least 32 characters" in lines[1]
    assert "'DEBUG', 'INFO', 'WARNING', 'ERROR' or 'CRITICAL'" in lines[2]
    assert "hunter2" not in result.stderr
    assert "tooshort" not in result.stderr


@pytest.fixture
def runner() -> CliRunner:
    """``escrow`` in process, with help wide enough that no name is folded."""
    get_settings.cache_clear()
    return CliRunner(env={"COLUMNS": "300"})


def test_version_is_the_installed_packages(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--version"])

    assert result.exit_code == 0
    assert result.output.strip() == f"escrow {version('escrow')}"


def test_help_names_the_environment_variable_of_every_setting_and_option(
    runner: CliRunner,
) -> None:
    top = runner.invoke(app, ["--help"])
    serve = runner.invoke(app, ["serve", "--help"])

    assert top.exit_code == serve.exit_code == 0
    for name in Settings.model_fields:
        assert f"ESCROW_{name.upper()}" in top.output
    for option, variable in [
        ("--host", "ESCROW_HOST"),
        ("--port", "ESCROW_PORT"),
        ("--no-worker", "ESCROW_EMBEDDED_WORKER"),
        ("--workers", "ESCROW_WORKERS"),
        ("--keep-alive", "ESCROW_KEEP_ALIVE_SECONDS"),
    ]:
        [row] = [line for line in serve.output.splitlines() if f" {option} " in line]
        assert f"[env var: {variable}]" in row, row


def test_help_works_whatever_the_settings(runner: CliRunner) -> None:
    result = runner.invoke(app, ["verify", "--help"], env={"ESCROW_LOG_LEVEL": "verbose"})

    assert result.exit_code == 0, result.output
    assert "Replay every order" in result.output
