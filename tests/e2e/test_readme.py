"""The README's first-order curl session, run with bash against a live ``escrow serve``.

A newcomer pastes that block against ``make run``; if it stops working, this test says so.
It runs on SQLite, the ``make run`` default.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from support.processes import BIN, Process

from .conftest import ADMIN_KEY, FEE_BPS

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- first-order:"


def first_order_session() -> str:
    text = README.read_text()
    assert MARKER in text, "the README lost its first-order session"
    block = re.search(r"```sh\n(.*?)```", text[text.index(MARKER) :], re.DOTALL)
    assert block is not None
    return block.group(1)


@pytest.mark.sqlite_only
def test_the_readme_session_takes_an_order_to_completed_and_paid_out(server: Process) -> None:
    missing = [tool for tool in ("bash", "curl", "jq") if shutil.which(tool) is None]
    if missing:
        reason = f"the README session needs {', '.join(missing)}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)  # as for PostgreSQL: CI never skips a gap
        pytest.skip(reason)
    assert server.base_url is not None
    env = {
        **os.environ,
        "API": server.base_url,
        "ESCROW_ADMIN_KEY": ADMIN_KEY,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # python3 for SHIP_BY
    }
    run = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", first_order_session()],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    *statuses, amounts, final, payout, ledger = run.stdout.split()
    assert statuses == ["accepted", "partially_paid", "held", "shipped", "delivered"]
    total = 500 * 1250 + 35_000
    fee = total * FEE_BPS // 10_000  # 16_500, exact
    assert json.loads(amounts) == {
        "total": total,
        "paid": total,
        "held": 0,
        "released": total,
        "refunded": 0,
        "fees": fee,
        "agency_fees": 0,
        "retained": 0,
        "paid_out": 0,
        "refunds_completed": 0,
    }
    assert final == "completed"
    assert payout == "paid"
    net = total - fee
    assert json.loads(ledger) == [
        ["posted", total],
        ["posted", -fee],
        ["pending", -net],
        ["posted", -net],
    ]
