"""A request head over the limit is refused by ``escrow serve`` before it is kept (issue 12,
fix 1): junk bearer values of 1 MiB no longer grow the server's memory."""

import secrets
from pathlib import Path

import httpx
import pytest

from support.processes import Process

from .conftest import ADMIN_KEY

MIB = 1024 * 1024


def resident_mib(pid: int) -> float:
    """The process's resident set size (VmRSS) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def send_junk_bearers(http: httpx.Client, count: int) -> None:
    for _ in range(count):
        junk = secrets.token_hex(MIB // 2)  # 1 MiB, a different value each time
        response = http.get("/v1/orders", headers={"Authorization": f"Bearer {junk}"})
        assert response.status_code == 431, response.text[:200]
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "headers_too_large"


@pytest.mark.sqlite_only
def test_oversized_headers_are_refused_without_growing_the_server(server: Process) -> None:
    assert server.base_url is not None
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        assert http.get("/v1/orders", headers=admin).status_code == 200
        send_junk_bearers(http, 10)  # the allocator's first arenas, before measuring
        before = resident_mib(server.popen.pid)

        send_junk_bearers(http, 200)

        grown = resident_mib(server.popen.pid) - before
        assert grown < 10, f"the server grew by {grown:.1f} MiB"
        assert http.get("/v1/orders", headers=admin).status_code == 200


@pytest.mark.sqlite_only
def test_headers_within_the_limit_are_served(server: Process) -> None:
    assert server.base_url is not None
    headers = {"Authorization": f"Bearer {ADMIN_KEY}", "X-Trace-Note": "x" * 8 * 1024}
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        for _ in range(3):  # one keep-alive connection: the count starts again per request
            assert http.get("/v1/orders", headers=headers).status_code == 200
