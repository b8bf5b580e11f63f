"""allowed_actions: what this caller may do now, named after the routes.

Each action is probed through ``decide`` itself, so the list can never disagree with the rules.
"""

from datetime import datetime

from escrow_core.domain import commands as c
from escrow_core.domain.errors import DomainError
from escrow_core.domain.order.decide import decide
from escrow_core.domain.order.rules import TRANSITIONS
from escrow_core.domain.order.state import OrderState
from escrow_core.domain.roles import Actor
from escrow_core.domain.terms import DisputeReason, ExtendableDeadline, PaymentMethod

_PROBE_REF = "\x00allowed-actions-probe"


def _probes(state: OrderState, actor: Actor) -> dict[str, list[c.Command]]:
    held = state.amounts.held
    return {
        "accept": [c.AcceptOrder(actor=actor)],
        "pay": [
            c.RecordPayment(
                actor=actor,
                amount=max(state.unpaid, 1),
                method=PaymentMethod.CARD,
                provider_ref=_PROBE_REF,
            )
        ],
        "ship": [c.ShipOrder(actor=actor, carrier="-", tracking_number="-")],
        "deliver": [c.ReportDelivery(actor=actor)],
        "confirm_receipt": [c.ConfirmReceipt(actor=actor)],
        "extend": [
            c.ExtendDeadline(actor=actor, deadline=kind, days=1) for kind in ExtendableDeadline
        ],
        "cancel": [c.CancelOrder(actor=actor)],
        "message": [c.PostMessage(actor=actor, body="-")],
        "open_dispute": [
            c.OpenDispute(actor=actor, reason=DisputeReason.OTHER, requested_refund=held)
        ],
        "make_offer": [c.MakeOffer(actor=actor, refund_amount=0)],
        "accept_offer": [c.AcceptOffer(actor=actor)],
        "escalate": [c.EscalateDispute(actor=actor)],
        "resolve": [c.ResolveDispute(actor=actor, refund_amount=0)],
        "withdraw": [c.WithdrawDispute(actor=actor)],
    }


def allowed_actions(state: OrderState, actor: Actor, now: datetime) -> list[str]:
    allowed = []
    for action, probes in _probes(state, actor).items():
        for probe in probes:
            roles, statuses = TRANSITIONS[type(probe)]
            if actor.role not in roles or state.status not in statuses:
                continue  # decide would refuse it: spare the call (this runs on every read)
            try:
                decide(state, probe, now)
            except DomainError:
                continue
            allowed.append(action)
            break
    return allowed
