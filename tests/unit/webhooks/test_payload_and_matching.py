"""The webhook body, and which endpoints an event goes to."""

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import orjson

from escrow_core.store import RecordedEvent
from escrow_core.webhooks.endpoints import Endpoint, normalise_event_types
from escrow_core.webhooks.matching import Audience, matches
from escrow_core.webhooks.payload import MAX_BODY_BYTES, document, encode

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def recorded(type_: str = "funds.released", *, at: datetime = T0) -> RecordedEvent:
    return RecordedEvent(
        position=42,
        stream_id="ord_abc",
        version=7,
        event_id=uuid.UUID(int=1),
        type=type_,
        schema_version=1,
        data={"at": "2026-01-01T00:00:00Z", "gross": 1000},
        metadata={},
        recorded_at=at,
        transaction_id=0,
    )


def endpoint(owner: str | None = None, event_types: tuple[str, ...] = ("*",)) -> Endpoint:
    return Endpoint(
        id="whe_1",
        owner_party_id=owner,
        url="https://example.com",
        event_types=event_types,
        enabled=True,
        disabled_reason=None,
        secret="whsec_x",
        previous_secret=None,
        previous_secret_expires_at=None,
        failing_since=None,
        created_at=T0 - timedelta(seconds=1),
        updated_at=T0,
    )


def test_the_body_has_exactly_the_contract_fields() -> None:
    doc = document(recorded())

    assert doc == {
        "id": "evt_00000000000000000000000000000001",
        "type": "funds.released",
        "created_at": "2026-01-01T00:00:00Z",
        "order_id": "ord_abc",
        "sequence": 7,
        "position": 42,
        "data": {"gross": 1000},
    }
    assert orjson.loads(encode(doc)) == doc


def test_a_body_over_64_kb_is_sent_without_its_data() -> None:
    doc = {"id": "evt_1", "type": "order.placed", "data": {"remarks": "x" * 70_000}}

    body = encode(doc)

    assert len(body) <= MAX_BODY_BYTES
    assert orjson.loads(body) == {**doc, "data": None, "data_truncated": True}


def test_event_types_omitted_or_star_mean_all() -> None:
    assert normalise_event_types(None) == ("*",)
    assert normalise_event_types([]) == ("*",)
    assert normalise_event_types(["order.placed", "*"]) == ("*",)
    assert normalise_event_types(["a.b", "c.d", "a.b"]) == ("a.b", "c.d")


def test_an_admin_endpoint_takes_every_event() -> None:
    assert matches(endpoint(None), recorded(), Audience(frozenset(), frozenset()), replay=False)


def test_a_party_endpoint_takes_only_its_own_orders() -> None:
    audience = Audience(frozenset({"pty_buyer", "pty_supplier"}), frozenset())

    assert matches(endpoint("pty_buyer"), recorded(), audience, replay=False)
    assert matches(endpoint("pty_supplier"), recorded(), audience, replay=False)
    assert not matches(endpoint("pty_other"), recorded(), audience, replay=False)


def test_an_agent_endpoint_takes_the_orders_of_the_parties_it_manages() -> None:
    audience = Audience(frozenset({"pty_buyer", "pty_supplier"}), frozenset({"pty_agent"}))

    assert matches(endpoint("pty_agent"), recorded(), audience, replay=False)
    assert not matches(endpoint("pty_agent2"), recorded(), audience, replay=False)


def test_event_types_filter() -> None:
    audience = Audience(frozenset(), frozenset())
    only_released = endpoint(None, ("funds.released",))

    assert matches(only_released, recorded("funds.released"), audience, replay=False)
    assert not matches(only_released, recorded("order.placed"), audience, replay=False)


def test_events_before_the_endpoint_existed_are_not_sent_unless_replayed() -> None:
    audience = Audience(frozenset(), frozenset())
    old = recorded(at=T0 - timedelta(days=1))

    assert not matches(endpoint(None), old, audience, replay=False)
    assert matches(endpoint(None), old, audience, replay=True)


def test_the_previous_secret_signs_only_until_it_expires() -> None:
    rotating = replace(
        endpoint(), previous_secret="whsec_old", previous_secret_expires_at=T0 + timedelta(hours=24)
    )

    assert rotating.signing_secrets(T0) == ["whsec_x", "whsec_old"]
    assert rotating.signing_secrets(T0 + timedelta(hours=24)) == ["whsec_x"]


def test_a_payments_endpoint_takes_every_orders_money_events_only() -> None:
    payments = replace(endpoint(None), owner_role="payments")
    nobody = Audience(frozenset({"pty_buyer"}), frozenset())
    for money in ("funds.released", "payment.received", "refund.issued", "payout.paid"):
        assert matches(payments, recorded(money), nobody, replay=False), money
    for other in ("order.placed", "dispute.opened", "webhook_endpoint.disabled"):
        assert not matches(payments, recorded(other), nobody, replay=False), other
    narrowed = replace(payments, event_types=("funds.released",))
    assert not matches(narrowed, recorded("funds.held"), nobody, replay=False)
    not_an_order = replace(recorded("refund.issued"), stream_id="whe_1")
    assert not matches(payments, not_an_order, nobody, replay=False)


def test_a_test_event_goes_to_the_endpoint_it_names_whatever_it_subscribes_to() -> None:
    nobody = Audience(frozenset(), frozenset())
    probe = replace(
        recorded("webhook.test"), stream_id="whe_1", data={"endpoint_id": "whe_1"}, recorded_at=T0
    )
    only_releases = endpoint("pty_buyer", ("funds.released",))
    assert matches(only_releases, probe, nobody, replay=False)
    assert not matches(replace(only_releases, id="whe_2"), probe, nobody, replay=False)
    assert not matches(replace(endpoint(None), id="whe_2"), probe, nobody, replay=False)
