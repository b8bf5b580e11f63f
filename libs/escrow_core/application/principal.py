"""Who is calling, and what that lets it see and do.

A key acts in its role for its party; an agent may name a party it registered
(``on_behalf_of``) and then acts exactly as that party, unless that party is deactivated.
Admins, mediators and payments see every order; a party sees its own; an agent acting as
itself sees its parties'. A read-only key reads what its role may read and does nothing.
"""

from dataclasses import dataclass

from escrow_core import accounts
from escrow_core.accounts import ApiKey, KeyRole, KeyScope, PartyKind
from escrow_core.application.errors import Forbidden
from escrow_core.application.ids import well_formed
from escrow_core.domain.order import OrderState
from escrow_core.domain.roles import Actor, Role
from escrow_core.store import Store


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key, its role and party, and the party an agent acts for."""

    key_id: str
    role: KeyRole  # the role this request acts in (an agent naming a party acts as that party)
    party_id: str | None  # the party this request acts as
    agent_id: str | None = None  # the agent party behind an Escrow-On-Behalf-Of request
    managed: frozenset[str] = frozenset()  # parties an agent (acting as itself) manages
    read_only: bool = False  # a key of scope ``read``: no action is allowed to it

    @property
    def on_behalf_of(self) -> str | None:
        return self.party_id if self.agent_id else None

    @property
    def is_party(self) -> bool:
        return self.role in (KeyRole.BUYER, KeyRole.SUPPLIER)

    @property
    def is_admin(self) -> bool:
        return self.role is KeyRole.ADMIN

    def require_admin(self, detail: str, code: str = "forbidden") -> None:
        """Forbidden (``code``, ``detail``) unless the caller is an admin."""
        if not self.is_admin:
            raise Forbidden(code, detail)

    @property
    def sees_everything(self) -> bool:
        return self.role in accounts.PARTYLESS_ROLES

    @property
    def scope(self) -> str:
        """What Idempotency-Keys are scoped to: the party, or the key for party-less roles."""
        owner = self.agent_id or self.party_id or self.key_id
        return f"{owner}|{self.on_behalf_of or ''}"

    def audit(self) -> dict[str, str | None]:
        """What goes into every event's metadata."""
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

    def can_see(self, order: OrderState) -> bool:
        return self.sees_everything or any(map(self.can_see_party, order.party_ids))

    def actor_on_new_order(self) -> Actor:
        if self.role is not KeyRole.BUYER:
            raise Forbidden("forbidden", "Only a buyer (or its agent) places orders.")
        return Actor(role=Role.BUYER, party_id=self.party_id)

    def viewer_on(self, order: OrderState) -> Actor | None:
        """The role ``allowed_actions`` is computed for; None for an agent acting as itself
        and for a read-only key (it may do nothing)."""
        if self.role is KeyRole.AGENT or self.read_only:
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
        raise Forbidden(
            "on_behalf_of_required",
            "An agent acts on an order for a party it manages: send Escrow-On-Behalf-Of.",
        )


async def acting_as(store: Store, key: ApiKey, on_behalf_of: str | None) -> Principal:
    """The principal of a request made with ``key``, naming ``on_behalf_of`` if given."""
    read_only = key.scope is KeyScope.READ
    if on_behalf_of is None:
        managed: frozenset[str] = frozenset()
        if key.role is KeyRole.AGENT and key.party_id is not None:
            async with store.read() as conn:
                managed = await accounts.managed_party_ids(conn, key.party_id)
        return Principal(key.id, key.role, key.party_id, managed=managed, read_only=read_only)
    if key.role is not KeyRole.AGENT:
        raise Forbidden(
            "on_behalf_of_not_allowed", "Only an agent key may send Escrow-On-Behalf-Of."
        )
    party = None
    if well_formed(on_behalf_of, "pty"):
        party = await accounts.find_party(store, on_behalf_of)
    if party is None or party.managed_by != key.party_id or party.kind is PartyKind.AGENT:
        raise Forbidden("party_not_managed", "This agent does not manage the party it names.")
    if party.deactivated_at is not None:
        raise Forbidden("party_deactivated", "The party this agent names is deactivated.")
    return Principal(
        key.id, KeyRole(party.kind.value), party.id, agent_id=key.party_id, read_only=read_only
    )
