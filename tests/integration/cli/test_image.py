"""The Docker image, without a Docker engine: what the Dockerfile says (read as text), and its
entrypoint run as the image runs it, as a process on a database with no schema yet."""

import asyncio
import fnmatch
import json
import os
import re
import shlex
import subprocess
import tomllib
from pathlib import Path, PurePosixPath

import httpx
import pytest
import sqlalchemy as sa
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from escrow_core.store import open_store
from support.processes import BIN, ROOT, Process, free_port, wait_ready

DOCKERFILE = (ROOT / "Dockerfile").read_text()
ADMIN_KEY = "esk_image_bootstrap_admin_key_0123456789"


def instructions(name: str) -> list[str]:
    """The arguments of every ``name`` instruction, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return re.findall(rf"^{name}\s+(.+?)\s*$", joined, re.MULTILINE)


def exec_form(name: str) -> list[str]:
    [argument] = instructions(name)
    command: list[str] = json.loads(argument)
    return command


def copied_to(source: str) -> str:
    """Where a COPY of ``source`` from the build context puts it."""
    for argument in instructions("COPY"):
        words = [word for word in shlex.split(argument) if not word.startswith("--")]
        if words[0] == source:
            return words[-1]
    raise AssertionError(f"the Dockerfile copies no {source}")


def test_the_healthcheck_asks_readiness_not_liveness() -> None:
    [healthcheck] = instructions("HEALTHCHECK")
    assert "/readyz" in healthcheck
    assert "/healthz" not in healthcheck


def test_the_image_installs_the_runtime_dependencies_only() -> None:
    syncs = [argument for argument in instructions("RUN") if argument.startswith("uv sync")]
    assert syncs, "the Dockerfile installs nothing with uv sync"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    runtime = {
        canonicalize_name(Requirement(dep).name) for dep in project["project"]["dependencies"]
    }
    groups = {
        canonicalize_name(Requirement(dep).name)
        for group in project["dependency-groups"].values()
        for dep in group
    }
    assert {"eventsourcing", "psycopg", "aiohttp", "py-spy", "pytest"} <= groups
    for sync in syncs:
        # uv export takes uv sync's selection flags and names what that sync would install.
        flags = [flag for flag in shlex.split(sync)[2:] if flag != "--no-install-project"]
        exported = subprocess.run(
            [str(BIN / "uv"), "export", *flags, "--no-hashes", "--no-emit-project"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "UV_NO_PROGRESS": "1"},
        )
        installed = {
            canonicalize_name(Requirement(line).name)
            for line in exported.stdout.splitlines()
            if line and not line.startswith(("#", " "))
        }
        assert runtime <= installed
        assert installed & (groups - runtime) == set(), sync


def test_the_sqlite_default_lives_in_a_volume() -> None:
    [env] = [argument for argument in instructions("ENV") if "ESCROW_DATABASE_URL" in argument]
    url = re.search(r'ESCROW_DATABASE_URL="([^"]+)"', env)
    assert url is not None
    directory = str(PurePosixPath(sa.make_url(url.group(1)).database or "").parent)
    volumes = [path for argument in instructions("VOLUME") for path in json.loads(argument)]
    assert directory in volumes
    # A volume declared before the directory is made and owned would lose those changes.
    assert DOCKERFILE.index("VOLUME") > DOCKERFILE.index(f"mkdir -p {directory}")


def test_the_entrypoint_is_the_migrating_script() -> None:
    [entrypoint] = exec_form("ENTRYPOINT")
    assert entrypoint == copied_to("docker/entrypoint.sh")
    assert os.access(ROOT / "docker" / "entrypoint.sh", os.X_OK)


def excluded(ignore: list[str], path: str) -> bool:
    """Whether the build context leaves ``path`` out (.dockerignore: the last pattern matching
    the path or one of its parents decides; ``!`` brings back)."""
    parts = PurePosixPath(path).parts
    ancestry = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    decision = False
    for pattern in ignore:
        negated = pattern.startswith("!")
        glob = pattern.removeprefix("!").rstrip("/")
        if glob.startswith("**/"):
            hit = any(fnmatch.fnmatch(part, glob[3:]) for part in parts)
        else:
            hit = any(
                fnmatch.fnmatch(each, glob) and "/" not in each[len(glob) :] for each in ancestry
            )
        if hit:
            decision = not negated
    return decision


def test_the_build_context_holds_what_the_image_copies_and_nothing_local() -> None:
    ignore = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = [
        word
        for argument in instructions("COPY")
        if "--from" not in argument
        for word in shlex.split(argument)[:-1]
        if not word.startswith("--")
    ]
    assert "docker/entrypoint.sh" in sources
    for source in sources:
        assert not excluded(ignore, source), source
    assert not excluded(ignore, "libs/escrow_core/settings.py")
    for local in (
        ".venv/bin/python",
        "var/escrow.db",
        ".git/HEAD",
        "tests/conftest.py",
        "bench/run.py",
        ".mypy_cache/x",
        "libs/escrow_core/__pycache__/settings.cpython-311.pyc",
    ):
        assert excluded(ignore, local), local


def start_image(command: list[str], env: dict[str, str], log_path: Path) -> Process:
    """The image's ENTRYPOINT script running ``command``, as ``docker run`` starts it."""
    with log_path.open("wb") as log:  # the child keeps its own descriptor
        popen = subprocess.Popen(
            ["sh", str(ROOT / "docker" / "entrypoint.sh"), *command],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return Process(popen, log_path)


async def test_the_image_serves_a_fresh_database_once_its_entrypoint_migrated_it(
    empty_database_url: str, tmp_path: Path
) -> None:
    # Given a database with no schema, and the image's entrypoint and command on a free port
    port = free_port()
    command = exec_form("CMD")
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--port") + 1] = str(port)
    env = {
        **os.environ,
        "ESCROW_DATABASE_URL": empty_database_url,
        "ESCROW_ADMIN_KEY": ADMIN_KEY,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    process = await asyncio.to_thread(start_image, command, env, tmp_path / "image.log")
    process.base_url = f"http://127.0.0.1:{port}"
    try:
        # When it starts, it is ready, and the API works on the schema it migrated
        # (migrating first, on a machine shared by other tests: a longer wait than a bare start)
        await asyncio.to_thread(wait_ready, process, 90.0)
        async with httpx.AsyncClient(base_url=process.base_url or "") as client:
            made = await client.post(
                "/v1/parties",
                json={"kind": "buyer", "name": "First Day Imports"},
                headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            )
        assert made.status_code == 201, made.text
    finally:
        await asyncio.to_thread(process.stop)

    assert "migrated" in process.log()
    # The server was the process itself (exec): the SIGTERM sent to it reached the server,
    # which shut down cleanly (a shell waiting on it would have died and left it running).
    assert "Application shutdown complete." in process.log()
    store = open_store(empty_database_url)
    try:
        assert await store.schema_is_current()
    finally:
        await store.dispose()


@pytest.mark.sqlite_only
async def test_the_entrypoint_can_leave_migrating_to_someone_else(empty_database_url: str) -> None:
    # Given the entrypoint told not to migrate (replicas migrated by one job instead)
    env = {
        **os.environ,
        "ESCROW_DATABASE_URL": empty_database_url,
        "ESCROW_MIGRATE_ON_START": "false",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }

    # When it runs a command on a database with no schema
    ran = await asyncio.to_thread(
        subprocess.run,
        ["sh", str(ROOT / "docker" / "entrypoint.sh"), "escrow", "verify"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    # Then nothing migrated it, and the command refused on one line
    assert ran.returncode == 1
    assert "migrated" not in ran.stderr.replace("not migrated", "")
    assert ran.stderr.strip().endswith("run escrow migrate"), ran.stderr
