"""Bearer keys -> the Principal a request acts as.

Key lookups are cached in process for a few seconds (DESIGN allows it); a revocation through
this process takes effect at once, through another process within ``KEY_CACHE_SECONDS``.
"""

import hmac
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Header, Request

from escrow_api.deps import well_formed
from escrow_api.problems import ApiError
from escrow_core import accounts
from escrow_core.accounts import ApiKey, KeyRole, PartyKind
from escrow_core.domain.order import OrderState
from escrow_core.domain.roles import Actor, Role
from escrow_core.runtime import Runtime

KEY_CACHE_SECONDS = 5.0
BOOTSTRAP_ADMIN_ID = "key_bootstrap_admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key, its role and party, and the party an agent acts for."""

    key_id: str
    role: KeyRole  # the role this request acts in (an agent naming a party acts as that party)
    party_id: str | None  # the party this request acts as
    agent_id: str | None = None  # the agent party behind an Escrow-On-Behalf-Of request
    managed: frozenset[str] = frozenset()  # parties an agent (acting as itself) manages

    @property
    def on_behalf_of(self) -> str | None:
        return self.party_id if self.agent_id else None

    @property
    def is_party(self) -> bool:
        return self.role in (KeyRole.BUYER, KeyRole.SUPPLIER)

    @property
    def sees_everything(self) -> bool:
        return self.role in accounts.PARTYLESS_ROLES

    @property
    def scope(self) -> str:
        """What idempotency keys are scoped to: the party, or the key for party-less roles."""
        owner = self.agent_id or self.party_id or self.key_id
        return f"{owner}|{self.on_behalf_of or ''}"

    def audit(self) -> dict[str, str | None]:
        return {
            "key_id": self.key_id,
            "role": self.role.value,
            "party_id": self.party_id,
            "on_behalf_of": self.on_behalf_of,
            "agent_id": self.agent_id,
        }

    @property
    def visible_parties(self) -> frozenset[str]:
        """The parties whose orders this caller sees (unless it sees everything)."""
        return self.managed | ({self.party_id} if self.party_id else set())

    def can_see_party(self, party_id: str) -> bool:
        return self.sees_everything or party_id == self.party_id or party_id in self.managed

    def can_see(self, order: OrderState | None) -> bool:
        if order is None:
            return False
        return any(self.can_see_party(p) for p in order.party_ids) or self.sees_everything

    def actor_on_new_order(self) -> Actor:
        if self.role is not KeyRole.BUYER:
            raise ApiError(403, "forbidden", "Only a buyer (or its agent) places orders.")
        return Actor(role=Role.BUYER, party_id=self.party_id)

    def viewer_on(self, order: OrderState) -> Actor | None:
        """The role ``allowed_actions`` is computed for; None for an agent acting as itself."""
        if self.role is KeyRole.AGENT:
            return None
        return self.actor_on(order)

    def actor_on(self, order: OrderState) -> Actor:
        """The domain role this caller holds on ``order`` (its side, for a party)."""
        if self.role in accounts.PARTYLESS_ROLES:
            return Actor(role=Role(self.role.value))
        if self.is_party and self.party_id == order.terms.buyer_id:
            return Actor(role=Role.BUYER, party_id=self.party_id)
        if self.is_party and self.party_id == order.terms.supplier_id:
            return Actor(role=Role.SUPPLIER, party_id=self.party_id)
        raise ApiError(
            403,
            "on_behalf_of_required",
            "An agent acts on an order for a party it manages: send Escrow-On-Behalf-Of.",
        )


class KeyCache:
    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, ApiKey | None]] = {}

    def get(self, secret: str) -> tuple[bool, ApiKey | None]:
        entry = self._entries.get(secret)
        if entry is None or entry[0] < time.monotonic():
            return False, None
        return True, entry[1]

    def put(self, secret: str, key: ApiKey | None) -> None:
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[secret] = (time.monotonic() + KEY_CACHE_SECONDS, key)

    def forget(self, key_id: str) -> None:
        for secret, (_, key) in list(self._entries.items()):
            if key is not None and key.id == key_id:
                del self._entries[secret]


def _unauthenticated(detail: str) -> ApiError:
    return ApiError(401, "unauthenticated", detail, headers={"WWW-Authenticate": "Bearer"})


async def _key_for(request: Request, secret: str) -> ApiKey | None:
    runtime: Runtime = request.app.state.runtime
    admin_key = runtime.settings.admin_key
    if admin_key and hmac.compare_digest(secret.encode(), admin_key.encode()):
        return ApiKey(BOOTSTRAP_ADMIN_ID, KeyRole.ADMIN, None, None, _EPOCH, None)
    cache: KeyCache = request.app.state.key_cache
    hit, key = cache.get(secret)
    if not hit:
        async with runtime.database.read() as conn:
            key = await accounts.find_active_key(conn, secret)
        cache.put(secret, key)
    return key


async def current_principal(
    request: Request,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    on_behalf_of: Annotated[
        str | None,
        Header(
            alias="Escrow-On-Behalf-Of",
            description="An agent acts for a party it registered: pty_...",
            max_length=100,
        ),
    ] = None,
) -> Principal:
    scheme, _, secret = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise _unauthenticated("Send an API key: Authorization: Bearer <key>.")
    key = await _key_for(request, secret.strip())
    if key is None:
        raise _unauthenticated("The API key is not valid (unknown or revoked).")
    if on_behalf_of is None:
        return await _as_itself(request, key)
    if key.role is not KeyRole.AGENT:
        raise ApiError(
            403, "on_behalf_of_not_allowed", "Only an agent key may send Escrow-On-Behalf-Of."
        )
    runtime: Runtime = request.app.state.runtime
    party = None
    if well_formed(on_behalf_of, "pty"):
        party = await accounts.find_party(runtime.database, on_behalf_of)
    if party is None or party.managed_by != key.party_id or party.kind is PartyKind.AGENT:
        raise ApiError(403, "party_not_managed", "This agent does not manage the party it names.")
    return Principal(key.id, KeyRole(party.kind.value), party.id, agent_id=key.party_id)


async def _as_itself(request: Request, key: ApiKey) -> Principal:
    managed: frozenset[str] = frozenset()
    if key.role is KeyRole.AGENT and key.party_id is not None:
        runtime: Runtime = request.app.state.runtime
        async with runtime.database.read() as conn:
            managed = await accounts.managed_party_ids(conn, key.party_id)
    return Principal(key.id, key.role, key.party_id, managed=managed)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
