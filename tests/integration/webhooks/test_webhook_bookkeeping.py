"""Webhooks carry the buyer's bookkeeping to the buyer side only (DESIGN 7.6): the supplier
side's ``order.placed`` has no ``metadata`` or ``client_reference``, and it never receives
``order.metadata_updated``."""

from support.api import auth

from .conftest import Cast, Hooks


async def test_the_supplier_side_gets_order_placed_without_the_books_and_no_updates(
    hooks: Hooks,
) -> None:
    api = hooks.api
    _, agent_auth = await api.party_with_key("agent")
    cast = await Cast.new(api, buyer_by=agent_auth)
    await hooks.endpoint("/buyer", by=cast.buyer_auth)
    await hooks.endpoint("/agent", by=agent_auth)
    await hooks.endpoint("/supplier", by=cast.supplier_auth)
    await hooks.endpoint("/admin")
    for_buyer = auth(agent_auth["Authorization"].removeprefix("Bearer "), cast.buyer["id"])
    books = {"metadata": {"po": "PO-1"}, "client_reference": "PO-1"}

    order_id = await cast.place(**books)
    patched = await api.client.patch(
        f"/v1/orders/{order_id}", json={"metadata": {"region": "south"}}, headers=for_buyer
    )
    assert patched.status_code == 200, patched.text
    await cast.to(order_id, "accepted")
    async with hooks.worker():
        paths = ("/buyer", "/agent", "/supplier", "/admin")
        await hooks.receiver.until(lambda r: sum(len(r.unique(p)) for p in paths) == 11)

    buyer_side_types = ["order.placed", "order.metadata_updated", "order.accepted"]
    for path in ("/buyer", "/agent", "/admin"):
        payloads = hooks.receiver.payloads(path)
        assert [p["type"] for p in payloads] == buyer_side_types, path
        assert payloads[0]["data"]["metadata"] == {"po": "PO-1"}, path
        assert payloads[0]["data"]["client_reference"] == "PO-1", path
        assert payloads[1]["data"]["metadata"] == {"po": "PO-1", "region": "south"}, path
    supplier = hooks.receiver.payloads("/supplier")
    assert [p["type"] for p in supplier] == ["order.placed", "order.accepted"]
    assert "metadata" not in supplier[0]["data"]
    assert "client_reference" not in supplier[0]["data"]
    assert supplier[0]["data"]["buyer_id"] == cast.buyer["id"]
