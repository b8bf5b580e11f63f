"""The SSRF deny list: one test per refused range, and the URL checks at registration."""

import asyncio
import ipaddress
import re
import time

import pytest

from escrow_core.webhooks.ssrf import (
    DENIED_RANGES,
    RESOLVE_TIMEOUT_SECONDS,
    BlockedAddress,
    Unresolvable,
    UnsafeUrl,
    check_url,
    denied_reason,
    target_of,
    vetted_addresses,
)

# (an address inside the range, the reason given). One case per range of the deny list.
REFUSED = [
    ("0.0.0.0", "unspecified"),  # noqa: S104 - an address to refuse, not to bind
    ("0.1.2.3", "unspecified"),
    ("10.0.0.1", "private"),
    ("100.64.0.1", "cgnat"),
    ("100.100.100.200", "cgnat"),  # Alibaba Cloud's metadata service
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("169.254.169.254", "link_local"),  # AWS / GCP / Azure metadata
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.0.0.8", "ietf_protocol_assignments"),
    ("192.0.2.10", "documentation"),
    ("192.88.99.1", "6to4_relay"),
    ("192.168.1.1", "private"),
    ("198.18.0.1", "benchmarking"),
    ("198.19.255.254", "benchmarking"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.9", "documentation"),
    ("224.0.0.251", "multicast"),
    ("239.255.255.250", "multicast"),
    ("255.255.255.255", "broadcast"),
    ("240.0.0.1", "reserved"),
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("64:ff9b::808:808", "nat64"),  # NAT64 of 8.8.8.8: refused, not translated
    ("64:ff9b:1::1", "nat64"),
    ("100::1", "discard_only"),
    ("2001::1", "teredo"),
    ("2001:2::1", "benchmarking"),
    ("2001:10::1", "orchid"),
    ("2001:20::1", "orchid"),
    ("2001:db8::1", "documentation"),
    ("2002:808:808::1", "6to4"),  # 6to4 of 8.8.8.8
    ("3fff::1", "documentation"),
    ("5f00::1", "srv6_sid"),
    ("fc00::1", "unique_local"),
    ("fd12:3456:789a::1", "unique_local"),
    ("fe80::1", "link_local"),
    ("fec0::1", "site_local"),
    ("ff02::1", "multicast"),
    # IPv4 inside IPv6: judged by the IPv4 address within.
    ("::ffff:127.0.0.1", "ipv4_in_ipv6_loopback"),
    ("::ffff:10.1.2.3", "ipv4_in_ipv6_private"),
    ("::ffff:169.254.169.254", "ipv4_in_ipv6_link_local"),
    ("::ffff:100.64.0.1", "ipv4_in_ipv6_cgnat"),
    ("::127.0.0.1", "ipv4_in_ipv6_loopback"),  # IPv4-compatible (deprecated)
    ("::ffff:0:7f00:1", "ipv4_in_ipv6_loopback"),  # IPv4-translated (::ffff:0:0:0/96)
    ("::ffff:0:a01:203", "ipv4_in_ipv6_private"),
    ("::10.0.0.1", "ipv4_in_ipv6_private"),
]


@pytest.mark.parametrize(("address", "reason"), REFUSED, ids=[a for a, _ in REFUSED])
def test_a_non_public_address_is_refused(address: str, reason: str) -> None:
    assert denied_reason(ipaddress.ip_address(address)) == reason


def test_every_range_of_the_deny_list_has_a_case() -> None:
    covered = {
        network
        for network, _ in DENIED_RANGES
        for address, _ in REFUSED
        if ipaddress.ip_address(address).version == network.version
        and ipaddress.ip_address(address) in network
    }
    assert covered == {network for network, _ in DENIED_RANGES}


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "1.1.1.1", "93.184.215.14", "2606:4700:4700::1111", "::ffff:8.8.8.8"],
)
def test_a_public_address_is_allowed(address: str) -> None:
    assert denied_reason(ipaddress.ip_address(address)) is None


def test_a_scoped_ipv6_address_is_refused() -> None:
    assert denied_reason(ipaddress.ip_address("fe80::1%eth0")) == "link_local"


def test_is_global_is_a_second_net_for_what_the_list_does_not_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("escrow_core.webhooks.ssrf.DENIED_RANGES", ())

    assert denied_reason(ipaddress.ip_address("10.0.0.1")) == "not_global"
    assert denied_reason(ipaddress.ip_address("8.8.8.8")) is None


# --- URLs ------------------------------------------------------------------------------------


def resolver_to(*addresses: str):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolve


async def unresolvable(host: str, port: int) -> list[str]:
    raise OSError("Name or service not known")


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("https://hooks.example.com/x", ("hooks.example.com", 443)),
        ("http://hooks.example.com/x", ("hooks.example.com", 80)),
        ("https://hooks.example.com:8443/x?a=1", ("hooks.example.com", 8443)),
        ("http://[2606:4700::1]:8080/", ("2606:4700::1", 8080)),
    ],
)
def test_the_target_of_a_url(url: str, target: tuple[str, int]) -> None:
    assert target_of(url) == target


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.com/",
        "file:///etc/passwd",
        "gopher://x/",
        "https://user:pass@hooks.example.com/",
        "https:///no-host",
        "https://hooks.example.com:99999/",
        "hooks.example.com/x",
    ],
)
def test_a_url_webhooks_do_not_accept_is_invalid(url: str) -> None:
    with pytest.raises(UnsafeUrl) as refused:
        target_of(url)
    assert refused.value.code == "webhook_url_invalid"


async def test_a_name_resolving_to_a_private_address_is_not_allowed() -> None:
    with pytest.raises(UnsafeUrl) as refused:
        await check_url(
            "https://internal.example.com/", allow_private=False, resolver=resolver_to("10.0.0.5")
        )
    assert refused.value.code == "webhook_url_not_allowed"
    assert "private" in refused.value.detail


async def test_one_private_answer_among_public_ones_refuses_the_name() -> None:
    with pytest.raises(UnsafeUrl) as refused:
        await check_url(
            "https://mixed.example.com/",
            allow_private=False,
            resolver=resolver_to("8.8.8.8", "127.0.0.1"),
        )
    assert refused.value.code == "webhook_url_not_allowed"


async def test_a_literal_private_address_is_not_allowed_without_resolving() -> None:
    for url in ("http://127.0.0.1:8080/", "http://[::1]/", "http://169.254.169.254/latest"):
        with pytest.raises(UnsafeUrl) as refused:
            await check_url(url, allow_private=False, resolver=unresolvable)
        assert refused.value.code == "webhook_url_not_allowed"


# Anything that reads as an IPv4 or IPv6 address (two colon-separated hex groups or more).
ADDRESS_TEXT = re.compile(r"\d{1,3}(\.\d{1,3}){3}|[0-9a-f]{0,4}(:[0-9a-f]{0,4}){2,}", re.I)


@pytest.mark.parametrize(
    ("url", "answers"),
    [
        ("https://internal.example.com/", ("10.0.0.5",)),
        ("https://mixed.example.com/", ("93.184.215.14", "127.0.0.1")),
        ("https://v6.example.com/", ("fd00::1",)),
        ("https://mapped.example.com/", ("::ffff:169.254.169.254",)),
        ("http://127.0.0.1:8080/", ()),
        ("http://[::ffff:0:7f00:1]/", ()),
    ],
)
async def test_a_refusal_names_no_address(url: str, answers: tuple[str, ...]) -> None:
    with pytest.raises(UnsafeUrl) as refused:
        await check_url(url, allow_private=False, resolver=resolver_to(*answers))

    assert refused.value.code == "webhook_url_not_allowed"
    assert ADDRESS_TEXT.search(refused.value.detail) is None, refused.value.detail
    assert ADDRESS_TEXT.search(str(refused.value)) is None


async def test_a_blocked_delivery_names_the_kind_of_address_not_the_address() -> None:
    with pytest.raises(BlockedAddress) as blocked:
        await vetted_addresses(
            "internal.example.com", 443, allow_private=False, resolver=resolver_to("10.0.0.5")
        )

    assert str(blocked.value) == "internal.example.com resolves to a private address"
    assert blocked.value.reason == "private"


async def test_a_name_that_does_not_resolve_in_time_is_refused_in_time() -> None:
    asked: list[str] = []

    async def hangs(host: str, port: int) -> list[str]:
        asked.append(host)
        await asyncio.Event().wait()  # a resolver that never answers
        raise AssertionError("unreachable")

    started = time.monotonic()
    with pytest.raises(UnsafeUrl) as refused:
        await check_url(
            "https://slow.example.com/", allow_private=False, resolver=hangs, resolve_timeout=0.2
        )

    assert time.monotonic() - started < 2
    assert asked == ["slow.example.com"]
    assert refused.value.code == "webhook_url_resolve_timeout"
    assert 1 <= RESOLVE_TIMEOUT_SECONDS <= 5  # "a few seconds" by default


async def test_an_unresolvable_name_is_refused_with_its_own_code() -> None:
    with pytest.raises(UnsafeUrl) as refused:
        await check_url("https://nowhere.invalid/", allow_private=False, resolver=unresolvable)
    assert refused.value.code == "webhook_url_unresolvable"


async def test_a_public_name_is_allowed() -> None:
    await check_url(
        "https://hooks.example.com/", allow_private=False, resolver=resolver_to("93.184.215.14")
    )


async def test_allow_private_lifts_the_address_checks_but_not_the_scheme() -> None:
    await check_url("http://127.0.0.1:9/", allow_private=True, resolver=unresolvable)
    with pytest.raises(UnsafeUrl):
        await check_url("ftp://127.0.0.1/", allow_private=True)


async def test_vetted_addresses_are_the_resolved_ones_all_checked() -> None:
    resolve = resolver_to("93.184.215.14", "2606:2800:21f::1")

    found = await vetted_addresses("example.com", 443, allow_private=False, resolver=resolve)

    assert found == ["93.184.215.14", "2606:2800:21f::1"]
    with pytest.raises(BlockedAddress, match="loopback"):
        await vetted_addresses(
            "example.com", 443, allow_private=False, resolver=resolver_to("127.0.0.1")
        )
    with pytest.raises(Unresolvable):
        await vetted_addresses("example.com", 443, allow_private=True, resolver=unresolvable)
