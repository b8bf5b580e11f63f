"""The HTTP client deliveries go through, pinned to the addresses the SSRF check approved.

httpcore opens every TCP connection through its network backend's ``connect_tcp(host, port)``;
TLS (``start_tls``, with SNI and certificate checks against the URL's host name) and the
``Host`` header come afterwards and never see the address. ``PinnedBackend`` resolves the name
itself at that moment, runs the deny list over every answer, and connects to one of the checked
addresses: a single lookup, and the one that was checked is the one used, so DNS rebinding
between a check and the connect cannot happen.

Keep-alive is off, so every delivery opens a new connection and is checked again. The client
never follows redirects and ignores proxy variables from the environment (a proxy would do its
own resolution). Timeouts: ``connect_timeout`` for resolving + connecting, and the caller
bounds the whole exchange (``total_timeout``).
"""

import math
import ssl
import typing
from contextlib import nullcontext

import anyio
import httpcore
import httpx

from escrow_core.webhooks.ssrf import Resolver, system_resolver, vetted_addresses

USER_AGENT = "escrow-webhooks/1.0"


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects to a vetted address of the host it is asked for (see the module docstring)."""

    def __init__(
        self,
        *,
        allow_private: bool,
        resolver: Resolver = system_resolver,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.allow_private = allow_private
        self.resolver = resolver
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        deadline = anyio.current_time() + (timeout if timeout is not None else math.inf)
        limit = anyio.fail_after(timeout) if timeout is not None else nullcontext()
        try:
            with limit:
                addresses = await vetted_addresses(
                    host, port, allow_private=self.allow_private, resolver=self.resolver
                )
        except TimeoutError as error:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from error
        failure: Exception = httpcore.ConnectError(f"{host} has no address to connect to")
        for address in addresses:
            remaining = deadline - anyio.current_time()
            if remaining <= 0:
                raise httpcore.ConnectTimeout(f"connecting to {host} timed out")
            try:
                return await self.inner.connect_tcp(
                    address,
                    port,
                    timeout=None if math.isinf(remaining) else remaining,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error  # try the next checked address, as a browser would
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks are never delivered over a unix socket")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with its connection pool on a ``PinnedBackend``, keep-alive off."""

    def __init__(self, backend: PinnedBackend, ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(trust_env=False)
        # httpx builds its pool without a backend argument, so the pool is rebuilt here with
        # the same settings plus ours; tests/integration/webhooks pin this behaviour down.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(trust_env=False),
            max_connections=100,
            max_keepalive_connections=0,
            network_backend=backend,
        )


def delivery_client(
    *,
    allow_private: bool,
    connect_timeout: float,
    total_timeout: float,
    resolver: Resolver = system_resolver,
    ssl_context: ssl.SSLContext | None = None,
) -> httpx.AsyncClient:
    """The client the sender posts with (the caller also bounds each exchange by
    ``total_timeout``: httpx's timeouts are per phase, not for the whole request)."""
    backend = PinnedBackend(allow_private=allow_private, resolver=resolver)
    return httpx.AsyncClient(
        transport=PinnedTransport(backend, ssl_context),
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(total_timeout, connect=connect_timeout),
        headers={"User-Agent": USER_AGENT},
    )
