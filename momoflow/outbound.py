"""Requests sent on a merchant's say-so (notification URLs) reach public addresses only.

A merchant chooses its ``notify_url``; the worker then POSTs there. Checking the URL's text
when the request arrives is not enough: a name can resolve to ``127.0.0.1``, ``10.x`` or
``169.254.169.254`` (a cloud's metadata service), and DNS can answer differently at delivery
time (rebinding). So the check happens at connect time, for every attempt:

* :class:`GuardedTransport` resolves the host itself, refuses the request when any address
  it resolves to is not global (loopback, private, link-local, shared, reserved, IPv4-mapped
  private, ...), and connects to the address it checked (the name still goes in ``Host``
  and, for https, in SNI and certificate checks), so a second lookup cannot swap it;
* :class:`DestinationPolicy` holds the exceptions: ``MOMOFLOW_NOTIFY_ALLOW`` lists the
  non-public destinations allowed (``127.0.0.2``, ``10.1.2.3:8443``, ``10.0.0.0/8:9000-9099``).
  The local stack and the tests allow ``127.0.0.2`` only: the sandboxes, the gateway and
  Temporal listen on ``127.0.0.1``, out of its reach.

The client built on it (:func:`notification_client`) never follows redirects, never reads
the answer's body, ignores proxy variables and keeps short timeouts.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: ``(host, port) -> addresses``: the system's resolver unless a test injects another.
Resolver = Callable[[str, int], Awaitable[list[str]]]

#: One notification attempt: connect within 5 s, everything within 10 s.
NOTIFY_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class DestinationRefused(httpx.TransportError):
    """The URL's host is, or resolves to, an address momoflow must not reach. Nothing was
    sent. The message names the host and the address, never the URL (it may hold a
    token)."""


@dataclass(frozen=True)
class AllowedDestination:
    """A non-public destination that may be reached anyway: a network and a port range
    (any port when ``ports`` is None)."""

    network: IPNetwork
    ports: range | None = None

    @classmethod
    def parse(cls, text: str) -> AllowedDestination:
        """``ADDRESS[/BITS][:PORT[-PORT]]``, IPv6 in brackets (``[::1]:8080``). Raises
        ``ValueError`` with the reason."""
        value = text.strip()
        address, ports = value, None
        if value.startswith("["):
            address, _, rest = value[1:].partition("]")
            if rest:
                if not rest.startswith(":"):
                    raise ValueError(f"{text!r}: expected [IPv6]:PORT")
                ports = rest[1:]
        elif value.count(":") == 1:
            address, ports = value.split(":")
        try:
            network = ipaddress.ip_network(address, strict=False)
        except ValueError:
            raise ValueError(f"{text!r}: {address!r} is not an IP address or network") from None
        return cls(network=network, ports=_port_range(text, ports) if ports else None)

    def permits(self, address: IPAddress, port: int) -> bool:
        """True when ``address:port`` is this destination."""
        return address in self.network and (self.ports is None or port in self.ports)

    def __str__(self) -> str:
        ports = "" if self.ports is None else f":{self.ports.start}-{self.ports.stop - 1}"
        return f"{self.network}{ports}"


def _port_range(text: str, ports: str) -> range:
    low, _, high = ports.partition("-")
    try:
        first, last = int(low), int(high or low)
    except ValueError:
        raise ValueError(f"{text!r}: {ports!r} is not a port or a port range") from None
    if not 1 <= first <= last <= 65535:
        raise ValueError(f"{text!r}: ports must be between 1 and 65535, low to high")
    return range(first, last + 1)


@dataclass(frozen=True)
class DestinationPolicy:
    """Global addresses, plus the ``allowed`` exceptions."""

    allowed: tuple[AllowedDestination, ...] = ()

    @classmethod
    def from_entries(cls, entries: Sequence[str]) -> DestinationPolicy:
        """The policy of ``MOMOFLOW_NOTIFY_ALLOW`` entries (``ValueError`` when one is
        malformed)."""
        return cls(allowed=tuple(AllowedDestination.parse(e) for e in entries))

    def refusal(self, address: IPAddress, port: int) -> str | None:
        """Why ``address:port`` may not be reached, or None."""
        if address.is_global and not _is_mapped_private(address):
            return None
        if any(entry.permits(address, port) for entry in self.allowed):
            return None
        return f"{address} is not a public address (and not in MOMOFLOW_NOTIFY_ALLOW)"


def _is_mapped_private(address: IPAddress) -> bool:
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return mapped is not None and not mapped.is_global


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order, once each."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that connects only to addresses ``policy`` allows, checked at
    connect time for every request (see the module docstring)."""

    def __init__(
        self,
        policy: DestinationPolicy,
        *,
        resolver: Resolver = system_resolver,
        inner: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._policy = policy
        self._resolver = resolver
        self._inner = inner if inner is not None else httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Resolve, check, then send to the checked address."""
        url = request.url
        host = url.host
        port = url.port or (443 if url.scheme == "https" else 80)
        literal = _ip_or_none(host)
        if literal is not None:
            addresses = [literal]
        else:
            try:
                found = await self._resolver(host, port)
            except OSError as exc:
                raise httpx.ConnectError(f"{host} does not resolve ({exc})") from None
            addresses = [a for a in (_ip_or_none(f) for f in found) if a is not None]
            if not addresses:
                raise httpx.ConnectError(f"{host} does not resolve")
        for address in addresses:
            reason = self._policy.refusal(address, port)
            if reason is not None:
                raise DestinationRefused(f"{host}: {reason}")
        pinned = addresses[0]
        request.url = url.copy_with(host=str(pinned))
        if literal is None and url.scheme == "https":
            # Certificate and SNI still name the host the merchant registered.
            request.extensions = {**request.extensions, "sni_hostname": host}
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._inner.aclose()


def _ip_or_none(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def notification_client(
    policy: DestinationPolicy, *, resolver: Resolver = system_resolver
) -> httpx.AsyncClient:
    """The HTTP client of merchant notifications: :class:`GuardedTransport`, no redirects,
    no proxies from the environment, :data:`NOTIFY_TIMEOUT`."""
    return httpx.AsyncClient(
        transport=GuardedTransport(policy, resolver=resolver),
        timeout=NOTIFY_TIMEOUT,
        follow_redirects=False,
        trust_env=False,
    )
