"""The delivery client connects to the address the SSRF check approved, every time."""

import asyncio
from typing import Any

import httpcore
import httpx
import pytest

from escrow_core.store import Store
from escrow_core.webhooks.ssrf import BlockedAddress
from escrow_core.webhooks.transport import PinnedBackend, PinnedTransport, delivery_client
from support.receiver import Receiver

from .conftest import Cast, hooks_on

pytestmark = pytest.mark.usefixtures("receiver")


class Names:
    """A resolver with a script: each lookup of a name gives the next answer."""

    def __init__(self, **answers: list[list[str]]) -> None:
        self.answers = {name.replace("_", "."): list(a) for name, a in answers.items()}
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        answers = self.answers[host]
        return answers.pop(0) if len(answers) > 1 else answers[0]


def client(names: Names, *, allow_private: bool) -> httpx.AsyncClient:
    return delivery_client(
        allow_private=allow_private, connect_timeout=2, total_timeout=5, resolver=names
    )


async def test_the_connection_goes_to_the_vetted_address_with_the_original_host(
    receiver: Receiver,
) -> None:
    names = Names(hooks_example_test=[["127.0.0.1"]])
    receiver.secrets["/x"] = []  # unsigned: only the request itself is looked at

    async with client(names, allow_private=True) as http:
        response = await http.post(f"http://hooks.example.test:{receiver.port}/x", content=b"{}")

    assert response.status_code == 400  # our receiver refuses an unsigned request
    assert names.lookups == ["hooks.example.test"]  # resolved once, by the pinned backend
    assert receiver.unverified == [("/x", "no secret verifies it")]


class Recording(httpcore.AsyncNetworkBackend):
    """An inner backend that records where it is asked to connect and connects nowhere."""

    def __init__(self) -> None:
        self.connects: list[tuple[str, int]] = []

    async def connect_tcp(self, host: str, port: int, *args: object, **kw: object) -> Any:
        self.connects.append((host, port))
        raise httpcore.ConnectError("not really connecting")


async def test_every_request_resolves_and_checks_again() -> None:
    # DNS rebinding: public when first asked, loopback the next time.
    names = Names(rebind_example_test=[["93.184.215.14"], ["127.0.0.1"]])
    inner = Recording()
    backend = PinnedBackend(allow_private=False, resolver=names, inner=inner)

    async with httpx.AsyncClient(transport=PinnedTransport(backend)) as http:
        with pytest.raises(httpx.ConnectError):
            await http.post("https://rebind.example.test/x", content=b"{}")
        with pytest.raises(BlockedAddress, match="loopback"):
            await http.post("https://rebind.example.test/x", content=b"{}")

    assert names.lookups == ["rebind.example.test", "rebind.example.test"]
    assert inner.connects == [("93.184.215.14", 443)]  # the checked address, never the name


async def test_a_literal_private_address_is_refused_without_any_lookup(receiver: Receiver) -> None:
    names = Names()

    async with client(names, allow_private=False) as http:
        with pytest.raises(BlockedAddress, match="loopback"):
            await http.post(f"http://127.0.0.1:{receiver.port}/x", content=b"{}")

    assert names.lookups == []


def test_the_transport_really_runs_on_the_pinned_backend() -> None:
    # httpx builds its own pool; PinnedTransport replaces it. If httpx ever renames the
    # attribute, this fails instead of the guard silently going away.
    backend = PinnedBackend(allow_private=False)
    transport = PinnedTransport(backend)

    pool = transport._pool
    assert isinstance(pool, httpcore.AsyncConnectionPool)
    assert pool._network_backend is backend
    assert pool._max_keepalive_connections == 0


async def test_a_delivery_to_a_private_address_is_refused_by_the_worker(
    fresh_store: Store, receiver: Receiver
) -> None:
    # Registered while private addresses were allowed (say, a setting changed since), the
    # endpoint is still checked at delivery: the attempt fails and nothing reaches it.
    async with hooks_on(fresh_store, receiver) as hooks:
        endpoint = await hooks.endpoint()
        cast = await Cast.new(hooks.api)
        strict = delivery_client(allow_private=False, connect_timeout=1, total_timeout=2)
        async with strict, hooks.worker(client=strict):
            await cast.place()
            deliveries: list[dict[str, Any]] = []
            for _ in range(100):
                deliveries = await hooks.deliveries(endpoint["id"])
                if deliveries and deliveries[0]["attempts"]:
                    break
                await asyncio.sleep(0.05)

    attempt = deliveries[0]["attempts"][0]
    assert attempt["status_code"] is None
    assert attempt["error"].startswith("refused by the SSRF guard: 127.0.0.1 resolves to")
    assert receiver.all() == receiver.refused == []
