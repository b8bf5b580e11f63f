"""Real processes for end-to-end tests: ``escrow serve`` (as the Dockerfile starts it) and
``escrow worker``, on a free port, stopped (or killed) by the test."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def dockerfile_command() -> list[str]:
    """The CMD of the Dockerfile, so the tests start the service exactly as the image does."""
    text = (ROOT / "Dockerfile").read_text()
    match = re.search(r"^CMD\s+(\[.*\])\s*$", text, re.MULTILINE)
    assert match, "the Dockerfile has no exec-form CMD"
    command: list[str] = json.loads(match.group(1))
    return command


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _with_port(command: list[str], host: str, port: int) -> list[str]:
    result = list(command)
    for flag, value in (("--host", host), ("--port", str(port))):
        if flag in result:
            result[result.index(flag) + 1] = value
        else:
            result += [flag, value]
    result[0] = str(BIN / result[0])  # the project's own console script
    return result


@dataclass
class Process:
    popen: subprocess.Popen[bytes]
    log_path: Path
    base_url: str | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, as in a crash."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def _spawn(command: list[str], env: dict[str, str], log_path: Path) -> Process:
    with log_path.open("wb") as log:  # the child keeps its own descriptor
        popen = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
        )
    return Process(popen, log_path)


def wait_ready(process: Process, timeout: float = 30.0) -> None:
    assert process.base_url is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"the server exited:\n{process.log()}")
        try:
            if httpx.get(f"{process.base_url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"the server was not ready in {timeout} s:\n{process.log()}")


@contextmanager
def serve(
    env: dict[str, str],
    log_dir: Path,
    *,
    extra_args: tuple[str, ...] = (),
    ready_within: float = 30.0,
) -> Iterator[Process]:
    """``escrow serve`` as the Dockerfile runs it, on a free port; yields once it is ready."""
    port = free_port()
    command = _with_port(dockerfile_command(), "127.0.0.1", port) + list(extra_args)
    process = _spawn(command, env, log_dir / f"serve-{port}.log")
    process.base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(process, ready_within)
        yield process
    except BaseException:
        _show_tail(process)  # pytest prints it with the failure
        raise
    finally:
        process.stop()


@contextmanager
def worker(
    env: dict[str, str], log_dir: Path, name: str = "worker", *, extra_args: tuple[str, ...] = ()
) -> Iterator[Process]:
    """``escrow worker [extra_args]``; the caller stops or kills it."""
    command = [str(BIN / "escrow"), "worker", *extra_args]
    process = _spawn(command, env, log_dir / f"{name}.log")
    try:
        yield process
    except BaseException:
        _show_tail(process)
        raise
    finally:
        process.stop()


def _show_tail(process: Process, lines: int = 40) -> None:
    tail = process.log().splitlines()[-lines:]
    print(f"--- the last {len(tail)} lines of {process.log_path.name} ---", *tail, sep="\n")


def run_cli(
    *args: str, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``escrow ARGS`` to completion (``timeout`` seconds at most)."""
    return subprocess.run(
        [str(BIN / "escrow"), *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
