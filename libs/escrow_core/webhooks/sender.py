"""The sender: claims due deliveries, posts them, and records what happened.

    claiming    one short transaction leases due deliveries (SKIP LOCKED), each its order's next
    posting     the POST, after that transaction has committed: no transaction or lock held
    recording   another short transaction, guarded by the lease token, for many attempts

A sender that dies mid-POST leaves its lease to expire, and the delivery is then taken by
another: at least once, never lost.
"""

import random
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from escrow_core.store import Store
from escrow_core.webhooks import claiming, posting, recording
from escrow_core.webhooks.claiming import Claimed
from escrow_core.webhooks.posting import Attempt
from escrow_core.webhooks.recording import Outcome

__all__ = ["Attempt", "Claimed", "Outcome", "Sender", "SenderSettings"]


@dataclass(frozen=True, slots=True)
class SenderSettings:
    schedule: tuple[float, ...]
    lease_seconds: float
    total_timeout: float
    disable_after_seconds: float


class Sender:
    """Claims, posts and records deliveries for one worker process."""

    def __init__(
        self,
        store: Store,
        settings: SenderSettings,
        client: httpx.AsyncClient,
        *,
        worker: str,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.client = client
        self.worker = worker
        self.rng = rng or random.Random()  # jitter, not a secret

    async def claim(self, limit: int) -> list[Claimed]:
        """Lease up to ``limit`` due deliveries (committed before this returns)."""
        return await claiming.claim(self.store, limit, lease_seconds=self.settings.lease_seconds)

    async def post(self, claimed: Claimed) -> Attempt:
        """POST one claimed delivery, with no transaction open; nothing is recorded yet."""
        return await posting.post(self.client, claimed, total_timeout=self.settings.total_timeout)

    async def record(self, attempts: Sequence[Attempt]) -> list[Outcome]:
        """Record attempts (many at once: one transaction) and what follows from them."""
        return await recording.record(
            self.store,
            attempts,
            schedule=self.settings.schedule,
            disable_after_seconds=self.settings.disable_after_seconds,
            worker=self.worker,
            rng=self.rng,
        )
