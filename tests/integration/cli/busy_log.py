"""``escrow`` run as a real subprocess (or, for a test that runs it again and again, in this
process), and a log of orders in every state money can be in."""

import asyncio
import subprocess
from dataclasses import dataclass

from service.story import MEDIATOR, TOTAL, Cast, Orders, open_dispute
from typer.testing import CliRunner

from escrow_core.application.commands import CommandService
from escrow_core.domain import commands as c
from escrow_core.domain.policy import TimerPolicy
from escrow_core.domain.roles import Actor, Role
from escrow_core.settings import get_settings
from escrow_core.store import Store
from support.processes import run_cli


async def escrow(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``escrow ARGS`` with ESCROW_DATABASE_URL set, run off the event loop."""
    return await asyncio.to_thread(run_cli, *args, env={"ESCROW_DATABASE_URL": database_url})


async def escrow_in_process(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``escrow ARGS`` as ``escrow`` would run it, the same command code, exit code and
    stderr, without starting a Python process (2 s of CPU for its imports each time): for a
    test that runs the command several times, once the subprocess form has been shown."""
    from escrow_cli.main import app  # the CLI, imported by the suites that use it only

    def invoke() -> subprocess.CompletedProcess[str]:
        get_settings.cache_clear()  # read from the environment of this run, as a process does
        try:
            result = CliRunner().invoke(
                app, list(args), env={"ESCROW_DATABASE_URL": database_url}, catch_exceptions=False
            )
        finally:
            get_settings.cache_clear()
        return subprocess.CompletedProcess(
            ["escrow", *args], result.exit_code, result.stdout, result.stderr
        )

    return await asyncio.to_thread(invoke)


@dataclass(frozen=True)
class BusyLog:
    cast: Cast
    completed: str
    cancelled: str
    settled: str
    refunded: str
    disputed: str
    held: str
    placed: str

    @property
    def order_ids(self) -> list[str]:
        return [
            self.completed,
            self.cancelled,
            self.settled,
            self.refunded,
            self.disputed,
            self.held,
            self.placed,
        ]


async def write_busy_log(store: Store) -> BusyLog:
    """Seven orders of one buyer and supplier, one in each kind of state money can be in."""
    cast = Cast.new()
    orders = Orders(CommandService(store), cast)
    admin = Actor(role=Role.ADMIN)
    no_negotiation = TimerPolicy(negotiation_days=0)

    completed = await orders.up_to("delivered")
    await orders.run(completed, c.ConfirmReceipt(actor=cast.buyer))
    cancelled = await orders.up_to("partially_paid")
    await orders.run(cancelled, c.CancelOrder(actor=admin, reason="fraud check"))
    settled = await orders.up_to("delivered")
    await orders.run(settled, open_dispute(cast, refund=40_000), c.AcceptOffer(actor=cast.supplier))
    refunded = await orders.up_to("shipped", policy=no_negotiation)
    await orders.run(
        refunded,
        open_dispute(cast, refund=TOTAL),
        c.EscalateDispute(actor=cast.buyer),
        c.ResolveDispute(actor=MEDIATOR, refund_amount=TOTAL, note="never arrived"),
    )
    disputed = await orders.up_to("delivered", currency="EUR")
    await orders.run(disputed, open_dispute(cast, refund=10_000))
    held = await orders.up_to("held")
    await orders.run(held, c.PostMessage(actor=cast.supplier, body="packing now"))
    placed = await orders.up_to("placed")
    return BusyLog(cast, completed, cancelled, settled, refunded, disputed, held, placed)
