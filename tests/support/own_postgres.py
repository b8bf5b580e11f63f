"""A PostgreSQL server of the test's own, for fault tests that stop and restart it.

Built by ``initdb`` into a temporary directory with the machine's PostgreSQL binaries
(``/usr/lib/postgresql/<version>/bin``), listening on a free port of 127.0.0.1 only, so the
shared server the other tests use is never touched. initdb and the server refuse to run as
root: as root they run as the ``postgres`` user (``runuser``), in a directory it owns.

    with own_postgres() as server:
        databases = PostgresDatabases(admin_url=server.admin_url)   # support.databases
        server.restart(mode="immediate", down_for=2.0)
        server.stop(); server.start()
"""

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import sqlalchemy as sa

from support.processes import free_port

OWNER = "postgres"
StopMode = Literal["smart", "fast", "immediate"]


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin directory, if any."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    return found[-1].parent if found else None


def _as_owner() -> list[str]:
    return ["runuser", "-u", OWNER, "--"] if os.geteuid() == 0 else []


@dataclass
class OwnPostgres:
    bin: Path
    directory: Path
    port: int

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def log_path(self) -> Path:
        return self.directory / "server.log"

    @property
    def admin_url(self) -> sa.URL:
        return sa.make_url(f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres")

    def _run(self, *command: str, timeout: float = 60) -> None:
        done = subprocess.run(
            [*_as_owner(), str(self.bin / command[0]), *command[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{command[0]} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n"
                f"{self.log()}"
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def init(self) -> None:
        self._run(
            "initdb", "--pgdata", str(self.data), "--username", "postgres",
            "--auth", "trust", "--no-sync", "--no-instructions",
        )  # fmt: skip

    def start(self) -> None:
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.directory}",
                "-c fsync=off",  # the tests crash the server, never the machine
                "-c max_connections=60",
            ]
        )
        self._run("pg_ctl", "start", "--pgdata", str(self.data), "--log", str(self.log_path),
                  "--options", options, "--wait", "--timeout", "30")  # fmt: skip

    def stop(self, mode: StopMode = "fast") -> None:
        self._run("pg_ctl", "stop", "--pgdata", str(self.data), "--mode", mode, "--wait")

    def restart(self, mode: StopMode = "immediate", down_for: float = 0.0) -> None:
        """Stop in ``mode`` (immediate: every backend killed, crash recovery on start), stay
        down ``down_for`` seconds, and start again."""
        self.stop(mode)
        time.sleep(down_for)
        self.start()


@contextmanager
def own_postgres() -> Iterator[OwnPostgres]:
    """A started server of its own; stopped and its directory removed afterwards."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise RuntimeError("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
    directory = Path(tempfile.mkdtemp(prefix="escrow-own-pg-"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam(OWNER)
        os.chown(directory, owner.pw_uid, owner.pw_gid)
    server = OwnPostgres(bin_dir, directory, free_port())
    try:
        server.init()
        server.start()
        yield server
    finally:
        with suppress(RuntimeError):  # already down
            server.stop("immediate")
        shutil.rmtree(directory, ignore_errors=True)
