"""Operating the API: Prometheus metrics, request ids and JSON logs.

- /metrics counts requests by route template (not raw path), method and status, with latency
  histograms, and order commands by type and outcome;
- X-Request-Id is taken from the request (or made), echoed in the response, written into the
  metadata of the events the request appends, and bound into every log line of the request;
- the logs are one JSON object per line.
"""

import json
import logging
from typing import Any

import pytest
import structlog
from prometheus_client.parser import text_string_to_metric_families

from escrow_core import logs
from support.api import Api, auth, order_terms

REQUESTS = "escrow_http_request_duration_seconds"
COMMANDS = "escrow_commands_total"


async def scrape(api: Api) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of /metrics, keyed by name and labels."""
    response = await api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def placed_order(api: Api) -> tuple[str, dict[str, str], dict[str, str]]:
    _, buyer = await api.party_with_key("buyer")
    supplier, supplier_auth = await api.party_with_key("supplier", trade_assurance=True)
    placed = await api.client.post("/v1/orders", json=order_terms(supplier["id"]), headers=buyer)
    assert placed.status_code == 201, placed.text
    return placed.json()["id"], buyer, supplier_auth


async def test_metrics_count_requests_by_route_template_and_commands_by_outcome(
    api: Api,
) -> None:
    order_id, buyer, supplier = await placed_order(api)
    before = await scrape(api)
    accepted = await api.client.post(f"/v1/orders/{order_id}/accept", headers=supplier)
    assert accepted.status_code == 200
    again = await api.client.post(f"/v1/orders/{order_id}/accept", headers=supplier)
    assert again.status_code == 409
    refused_code = again.json()["code"]
    missing = await api.client.get("/v1/orders/ord_nosuchorder", headers=buyer)
    assert missing.status_code == 404
    nowhere = await api.client.get("/v1/no/such/route")
    assert nowhere.status_code == 404
    after = await scrape(api)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    accept = {"route": "/v1/orders/{order_id}/accept", "method": "POST"}
    assert delta(f"{REQUESTS}_count", **accept, status="200") == 1
    assert delta(f"{REQUESTS}_count", **accept, status="409") == 1
    assert delta(f"{REQUESTS}_bucket", **accept, status="200", le="+Inf") == 1
    assert delta(f"{REQUESTS}_sum", **accept, status="200") > 0
    get_order = {"route": "/v1/orders/{order_id}", "method": "GET", "status": "404"}
    assert delta(f"{REQUESTS}_count", **get_order) == 1
    assert delta(f"{REQUESTS}_count", route="unmatched", method="GET", status="404") == 1
    # Raw paths never become labels: that would be one series per order.
    assert not any(order_id in str(labels) for _, labels in after)

    assert delta(COMMANDS, type="AcceptOrder", outcome="accepted") == 1
    assert delta(COMMANDS, type="AcceptOrder", outcome=refused_code) == 1


async def test_a_repeated_payment_counts_as_a_no_op(api: Api) -> None:
    order_id, _, supplier = await placed_order(api)
    assert (await api.client.post(f"/v1/orders/{order_id}/accept", headers=supplier)).is_success
    payments = auth(await api.role_key("payments"))
    body = {"amount": 1_000, "method": "card", "provider_ref": "once"}
    before = await scrape(api)
    for _ in range(2):
        paid = await api.client.post(f"/v1/orders/{order_id}/payments", json=body, headers=payments)
        assert paid.status_code == 200, paid.text
    after = await scrape(api)
    labels = {"type": "RecordPayment"}
    assert (
        value(after, COMMANDS, **labels, outcome="accepted")
        - value(before, COMMANDS, **labels, outcome="accepted")
        == 1
    )
    assert (
        value(after, COMMANDS, **labels, outcome="no_op")
        - value(before, COMMANDS, **labels, outcome="no_op")
        == 1
    )


async def test_the_request_id_is_echoed_stored_in_event_metadata_and_logged(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    order_id, _, supplier = await placed_order(api)
    capsys.readouterr()  # forget what setting up logged
    request_id = "req-from-the-client-42"
    accepted = await api.client.post(
        f"/v1/orders/{order_id}/accept", headers={**supplier, "X-Request-Id": request_id}
    )
    assert accepted.status_code == 200
    assert accepted.headers["X-Request-Id"] == request_id

    events = await api.app.state.runtime.store.stream(order_id)
    assert events[-1].type == "order.accepted"
    assert events[-1].metadata["request_id"] == request_id
    assert events[0].metadata["request_id"].startswith("req_")  # made for the placing request

    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    access = [line for line in lines if line.get("event") == "request"]
    assert len(access) == 1, lines
    assert access[0] == {
        **access[0],
        "request_id": request_id,
        "route": "/v1/orders/{order_id}/accept",
        "method": "POST",
        "status": 200,
        "level": "info",
        "logger": "escrow.http",
    }
    assert 0 < access[0]["duration_ms"] < 30_000  # a real command's time, in milliseconds
    assert access[0]["timestamp"].endswith("Z")


async def test_a_request_id_is_made_when_none_is_sent_or_the_sent_one_is_unusable(
    api: Api,
) -> None:
    made = await api.client.get("/healthz")
    assert made.headers["X-Request-Id"].startswith("req_")
    other = await api.client.get("/healthz")
    assert other.headers["X-Request-Id"] != made.headers["X-Request-Id"]
    too_long = await api.client.get("/healthz", headers={"X-Request-Id": "x" * 500})
    assert too_long.headers["X-Request-Id"].startswith("req_")
    # Errors carry it too, so a client can quote it in a support request.
    refused = await api.client.get("/v1/orders", headers={"X-Request-Id": "req-e"})
    assert refused.status_code == 401
    assert refused.headers["X-Request-Id"] == "req-e"


async def test_logs_are_one_json_object_per_line_even_for_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("INFO")
    structlog.contextvars.bind_contextvars(request_id="req-log")
    try:
        structlog.get_logger("escrow.test").info("structured", answer=42)
        logging.getLogger("uvicorn.error").warning("from the standard library: %s", "yes")
        logging.getLogger("escrow.test").debug("below the level")
        try:
            raise ValueError("multi\nline")
        except ValueError:
            logging.getLogger("escrow.test").exception("failed")
    finally:
        structlog.contextvars.unbind_contextvars("request_id")
    err = capsys.readouterr().err
    lines = [json.loads(line) for line in err.splitlines()]
    assert [line["event"] for line in lines] == [
        "structured",
        "from the standard library: yes",
        "failed",
    ]
    assert all(line["request_id"] == "req-log" for line in lines)
    assert lines[0]["answer"] == 42
    assert lines[1] == {**lines[1], "level": "warning", "logger": "uvicorn.error"}
    assert "ValueError: multi\nline" in lines[2]["exception"]
