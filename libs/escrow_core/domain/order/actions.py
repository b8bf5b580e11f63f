"""allowed_actions: what this caller may do now, named after the routes.

Each action is probed through ``decide`` itself, so the list can never disagree with the rules.
"""

from collections.abc import Callable
from datetime import datetime

from escrow_core.domain import commands as c
from escrow_core.domain.errors import DomainError
from escrow_core.domain.order.decide import decide
from escrow_core.domain.order.money_out import NewIds
from escrow_core.domain.order.rules import TRANSITIONS
from escrow_core.domain.order.state import OrderState
from escrow_core.domain.roles import Actor
from escrow_core.domain.terms import DisputeReason, ExtendableDeadline, PaymentMethod

_PROBE_REF = "\x00allowed-actions-probe"
_PROBE_IDS = NewIds("probe")


# Each action's command, and the probes that try it (built only when the transition table
# says the role and status could allow it: this runs on every order read).
_ACTIONS: dict[str, tuple[type[c.Command], Callable[[OrderState, Actor], list[c.Command]]]] = {
    "accept": (c.AcceptOrder, lambda s, a: [c.AcceptOrder(actor=a)]),
    "pay": (
        c.RecordPayment,
        lambda s, a: [
            c.RecordPayment(
                actor=a, amount=max(s.unpaid, 1), method=PaymentMethod.CARD, provider_ref=_PROBE_REF
            )
        ],
    ),
    "ship": (c.ShipOrder, lambda s, a: [c.ShipOrder(actor=a, carrier="-", tracking_number="-")]),
    "deliver": (c.ReportDelivery, lambda s, a: [c.ReportDelivery(actor=a)]),
    "confirm_receipt": (c.ConfirmReceipt, lambda s, a: [c.ConfirmReceipt(actor=a)]),
    "extend": (
        c.ExtendDeadline,
        lambda s, a: [c.ExtendDeadline(actor=a, deadline=k, days=1) for k in ExtendableDeadline],
    ),
    "cancel": (c.CancelOrder, lambda s, a: [c.CancelOrder(actor=a)]),
    "message": (c.PostMessage, lambda s, a: [c.PostMessage(actor=a, body="-")]),
    "open_dispute": (
        c.OpenDispute,
        lambda s, a: [
            c.OpenDispute(actor=a, reason=DisputeReason.OTHER, requested_refund=s.amounts.held)
        ],
    ),
    "make_offer": (c.MakeOffer, lambda s, a: [c.MakeOffer(actor=a, refund_amount=0)]),
    "accept_offer": (c.AcceptOffer, lambda s, a: [c.AcceptOffer(actor=a)]),
    "escalate": (c.EscalateDispute, lambda s, a: [c.EscalateDispute(actor=a)]),
    "resolve": (c.ResolveDispute, lambda s, a: [c.ResolveDispute(actor=a, refund_amount=0)]),
    "withdraw": (c.WithdrawDispute, lambda s, a: [c.WithdrawDispute(actor=a)]),
    "release": (c.ReleaseMilestone, lambda s, a: [c.ReleaseMilestone(actor=a, amount=1)]),
    # An empty change: decided as nothing to record, so allowed wherever the rules allow one.
    "update_metadata": (c.UpdateMetadata, lambda s, a: [c.UpdateMetadata(actor=a, metadata={})]),
    "claim": (
        c.MakeClaim,
        lambda s, a: [c.MakeClaim(actor=a, reason=DisputeReason.OTHER, requested_refund=0)],
    ),
}
#: Every action ``allowed_actions`` can name (the API documents them as a closed enum).
ACTION_NAMES: tuple[str, ...] = tuple(_ACTIONS)


def allowed_actions(state: OrderState, actor: Actor, now: datetime) -> list[str]:
    allowed = []
    for action, (command, probes) in _ACTIONS.items():
        roles, statuses = TRANSITIONS[command]
        if actor.role not in roles or state.status not in statuses:
            continue  # decide would refuse it: spare building and deciding the probes
        for probe in probes(state, actor):
            try:
                decide(state, probe, now, _PROBE_IDS)
            except DomainError:
                continue
            allowed.append(action)
            break
    return allowed
