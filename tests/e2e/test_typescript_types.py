"""TypeScript types generated from the committed document (openapi-typescript) type-check a
small client with ``tsc --strict``: ``Order.status`` narrows to its literal union (a
``switch`` whose ``default`` is ``never``), and a ``funds.released`` webhook body has numbers
for gross, fee and net. A deliberately wrong program must fail, so the check can fail.

The tools are pinned in clients/typescript/package.json (+ package-lock.json) and installed
there by ``make install`` (``npm ci``). The types are generated once for the module.
"""

import json
import subprocess
from pathlib import Path

import pytest

from support.processes import ROOT

pytestmark = pytest.mark.runs_long  # npm tools: run first (tests/conftest.py)
DOCUMENT = ROOT / "openapi" / "openapi.json"
TOOLS = ROOT / "clients" / "typescript" / "node_modules" / ".bin"

# Every case is listed from the document's own enum, so a status added later still compiles;
# the ``never`` in ``default`` compiles only if ``status`` is exactly that union (a plain
# ``string`` would reach it).
CLIENT = """\
import type { components, webhooks } from "./escrow-api";

type Order = components["schemas"]["Order"];
type OrderStatus = Order["status"];
type FundsReleased =
  webhooks["funds.released"]["post"]["requestBody"]["content"]["application/json"];
type Event = components["schemas"]["Event"];

export function label(status: OrderStatus): string {
  switch (status) {
CASES
    default: {
      const unreachable: never = status;
      return unreachable;
    }
  }
}

export function done(order: Order): boolean {
  return order.status === "completed" && order.allowed_actions.includes("message");
}

export function supplierNet(body: FundsReleased): number {
  if (body.data === null) {
    return 0; // data_truncated: read the event from the API
  }
  const gross: number = body.data.gross;
  const fee: number = body.data.fee;
  const net: number = body.data.net;
  const kind: "funds.released" = body.type;
  return kind === "funds.released" ? gross - fee - (gross - fee - net) : net;
}

export function refunded(event: Event): number {
  // The union narrows on type: only a refund.issued event's data has an amount.
  return event.type === "refund.issued" ? event.data.amount : 0;
}
"""

WRONG = """\
import type { components, webhooks } from "./escrow-api";

type Order = components["schemas"]["Order"];
type FundsReleased =
  webhooks["funds.released"]["post"]["requestBody"]["content"]["application/json"];

export function inTransit(order: Order): boolean {
  return order.status === "shipping";
}

export function fee(body: FundsReleased): string {
  return body.data === null ? "" : body.data.fee;
}
"""


def _tool(name: str) -> str:
    path = TOOLS / name
    assert path.exists(), f"{path} is missing: run `make install` (npm ci in clients/typescript)"
    return str(path)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the generated ``escrow-api.ts``, once for the module."""
    where = tmp_path_factory.mktemp("typescript")
    run = subprocess.run(
        [_tool("openapi-typescript"), str(DOCUMENT), "-o", str(where / "escrow-api.ts")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return where


@pytest.fixture(scope="module")
def checked(workspace: Path) -> str:
    """``tsc --strict --noEmit`` over the client and the wrong program at once (one compiler
    start): what it reports."""
    statuses = json.loads(DOCUMENT.read_text())["components"]["schemas"]["OrderStatus"]["enum"]
    cases = "\n".join(f'    case "{s}":\n      return "{s}";' for s in statuses)
    (workspace / "client.ts").write_text(CLIENT.replace("CASES", cases))
    (workspace / "wrong.ts").write_text(WRONG)
    run = subprocess.run(
        [
            _tool("tsc"),
            "--strict",
            "--noEmit",
            "--pretty",
            "false",
            "--target",
            "es2022",
            "--module",
            "esnext",
            "--moduleResolution",
            "bundler",
            "client.ts",
            "wrong.ts",
        ],
        cwd=workspace,  # tsc names the files as given: client.ts(line,column)
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode != 0, "tsc accepted the wrong program"
    return run.stdout + run.stderr


def errors_in(report: str, name: str) -> list[str]:
    return [line for line in report.splitlines() if line.startswith(name + "(")]


def test_a_strict_client_narrows_the_status_and_reads_a_typed_webhook(
    workspace: Path, checked: str
) -> None:
    errors = [line for line in checked.splitlines() if "error TS" in line]
    assert errors, checked
    # Every error is the wrong program's: none in the client, none in the generated types.
    assert [e for e in errors if not e.startswith("wrong.ts(")] == [], checked


def test_a_wrong_program_fails_the_type_check(workspace: Path, checked: str) -> None:
    wrong = errors_in(checked, "wrong.ts")
    # order.status === "shipping": no such status.
    assert any(e.startswith("wrong.ts(8,") and "TS2367" in e for e in wrong), checked
    assert any('"shipping"' in e for e in wrong), checked
    # fee is a number, not a string.
    assert any(e.startswith("wrong.ts(12,") and "TS2322" in e for e in wrong), checked


def test_node_modules_are_not_committed() -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "clients/typescript/node_modules/typescript"],
        cwd=ROOT,
        check=False,
    )
    assert ignored.returncode == 0
