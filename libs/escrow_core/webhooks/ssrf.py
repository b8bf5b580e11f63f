"""Where webhooks may not go: an explicit deny list of non-public address ranges.

The standard library's ``is_global`` is consulted too, but only as a second net: its notion of
"global" has changed between Python versions, and it knows nothing of the IPv6 ranges that
tunnel to an IPv4 address (NAT64, 6to4, Teredo), so the ranges are spelled out here. An
IPv4-mapped or IPv4-compatible IPv6 address is judged by the IPv4 address inside it.

The check runs at registration (``check_url``) and again on every connection
(``vetted_addresses``, called by the delivery transport with a fresh DNS answer), so a name
that resolved to a public address when registered and to a private one later is refused.
``ESCROW_WEBHOOK_ALLOW_PRIVATE=true`` lifts the address checks (tests, development).
"""

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: How long registration waits for a host name to resolve (deliveries have their own limit).
RESOLVE_TIMEOUT_SECONDS = 3.0
Resolver = Callable[[str, int], Awaitable[list[str]]]

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

#: (range, why it is refused); the first match names the reason.
DENIED_RANGES: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = (
    (_V4("0.0.0.0/8"), "unspecified"),  # "this network"
    (_V4("10.0.0.0/8"), "private"),
    (_V4("100.64.0.0/10"), "cgnat"),  # shared address space (also Alibaba's metadata service)
    (_V4("127.0.0.0/8"), "loopback"),
    (_V4("169.254.0.0/16"), "link_local"),  # cloud metadata services live here
    (_V4("172.16.0.0/12"), "private"),
    (_V4("192.0.0.0/24"), "ietf_protocol_assignments"),
    (_V4("192.0.2.0/24"), "documentation"),  # TEST-NET-1
    (_V4("192.88.99.0/24"), "6to4_relay"),
    (_V4("192.168.0.0/16"), "private"),
    (_V4("198.18.0.0/15"), "benchmarking"),
    (_V4("198.51.100.0/24"), "documentation"),  # TEST-NET-2
    (_V4("203.0.113.0/24"), "documentation"),  # TEST-NET-3
    (_V4("224.0.0.0/4"), "multicast"),
    (_V4("255.255.255.255/32"), "broadcast"),
    (_V4("240.0.0.0/4"), "reserved"),
    (_V6("::/128"), "unspecified"),
    (_V6("::1/128"), "loopback"),
    (_V6("64:ff9b::/96"), "nat64"),
    (_V6("64:ff9b:1::/48"), "nat64"),  # local-use NAT64
    (_V6("100::/64"), "discard_only"),
    (_V6("2001::/32"), "teredo"),
    (_V6("2001:2::/48"), "benchmarking"),
    (_V6("2001:10::/28"), "orchid"),
    (_V6("2001:20::/28"), "orchid"),
    (_V6("2001:db8::/32"), "documentation"),
    (_V6("2002::/16"), "6to4"),
    (_V6("3fff::/20"), "documentation"),
    (_V6("5f00::/16"), "srv6_sid"),
    (_V6("fc00::/7"), "unique_local"),  # IPv6's private range
    (_V6("fe80::/10"), "link_local"),
    (_V6("fec0::/10"), "site_local"),
    (_V6("ff00::/8"), "multicast"),
)

_IPV4_MAPPED = _V6("::ffff:0:0/96")
_IPV4_TRANSLATED = _V6("::ffff:0:0:0/96")  # SIIT (RFC 2765): the IPv4 address in the low 32 bits
_IPV4_COMPATIBLE = _V6("::/96")  # deprecated; ::/128 and ::1/128 are matched before it


def denied_reason(address: IPAddress) -> str | None:
    """Why ``address`` may not receive webhooks, or None if it is a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return "link_local"
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            inner = denied_reason(embedded)
            return None if inner is None else f"ipv4_in_ipv6_{inner}"
    for network, reason in DENIED_RANGES:
        if address.version == network.version and address in network:
            return reason
    if not address.is_global:
        return "not_global"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address in _IPV4_MAPPED:
        return address.ipv4_mapped
    if address in _IPV4_TRANSLATED or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return None


class UnsafeUrl(Exception):
    """A webhook URL refused: ``code`` is stable (webhook_url_invalid, _unresolvable,
    _resolve_timeout, _not_allowed)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class BlockedAddress(Exception):
    """A delivery's host resolved (now) to an address webhooks may not reach. The message
    names the host and ``reason`` (the kind of address), never the address: it is shown to
    the endpoint's owner, and what a name resolves to is not theirs to learn."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class Unresolvable(BlockedAddress):
    """The host does not resolve at all."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="unresolvable")


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to now, in the resolver's order, without repeats."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def target_of(url: str) -> tuple[str, int]:
    """(host, port) of an http(s) URL; UnsafeUrl when it is not one webhooks accept."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise UnsafeUrl("webhook_url_invalid", f"The URL is not valid: {error}.") from error
    if parts.scheme not in ("http", "https"):
        raise UnsafeUrl("webhook_url_invalid", "A webhook URL is http:// or https://.")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("webhook_url_invalid", "A webhook URL may not carry credentials.")
    if not parts.hostname:
        raise UnsafeUrl("webhook_url_invalid", "The URL has no host.")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


async def vetted_addresses(
    host: str, port: int, *, allow_private: bool, resolver: Resolver = system_resolver
) -> list[str]:
    """The addresses to connect to for ``host``: all of them checked, none refused.

    If any address the name resolves to is refused, all are: a name that answers both public
    and private addresses is a rebinding attempt, not a reason to pick the public one.
    """
    try:
        literal: IPAddress | None = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = await resolver(host, port)
        except (OSError, UnicodeError) as error:  # UnicodeError: a name IDNA cannot encode
            raise Unresolvable(f"{host} does not resolve: {error}") from error
        if not addresses:
            raise Unresolvable(f"{host} does not resolve")
    if not allow_private:
        for address in addresses:
            reason = denied_reason(ipaddress.ip_address(address))
            if reason is not None:
                raise BlockedAddress(f"{host} resolves to a {reason} address", reason=reason)
    return addresses


async def check_url(
    url: str,
    *,
    allow_private: bool,
    resolver: Resolver | None = None,
    resolve_timeout: float = RESOLVE_TIMEOUT_SECONDS,
) -> None:
    """Registration's check: an http(s) URL whose host resolves to public addresses only, in
    ``resolve_timeout`` seconds (``resolver`` defaults to ``system_resolver``).

    The refusal never names the address the host resolved to, nor the host: a literal
    address in the URL would be echoed back, and an answer that did would turn registration
    into a way to ask this service's DNS what a name is."""
    host, port = target_of(url)
    if allow_private:
        return
    try:
        async with asyncio.timeout(resolve_timeout):
            await vetted_addresses(
                host, port, allow_private=False, resolver=resolver or system_resolver
            )
    except TimeoutError as error:
        raise UnsafeUrl(
            "webhook_url_resolve_timeout",
            f"The URL's host did not resolve within {resolve_timeout:g} seconds; try again.",
        ) from error
    except Unresolvable as error:
        raise UnsafeUrl("webhook_url_unresolvable", "The URL's host does not resolve.") from error
    except BlockedAddress as error:
        raise UnsafeUrl(
            "webhook_url_not_allowed",
            f"The URL's host resolves to a {error.reason} address; webhooks go to publicly"
            " routable hosts only.",
        ) from error
