"""Notifications never reach an internal address on a merchant's say-so (issue 14, part 1).

In dev, a payout whose ``notify_url`` was ``http://127.0.0.1:<sandbox>/_sandbox/reset``
made the worker wipe the sandbox's ledger. The URL's text is checked when the request
arrives, and the address is checked again when the worker connects, for every attempt:
a name that resolves to a non-public address is refused, and the worker connects to the
address it checked, so DNS cannot swap it in between.

Real parts: the transport against real HTTP receivers (one on 127.0.0.2, the address the
tests allow, one on 127.0.0.1, which they do not), with a resolver given by the test where
a name must resolve somewhere on purpose; and the test stack's gateway and worker, where
the machine's own host name (which resolves to a loopback address) stands for a hostile
name.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from momoflow.outbound import (
    AllowedDestination,
    DestinationPolicy,
    DestinationRefused,
    notification_client,
)
from momoflow.sandbox.shared import ThreadedServer
from tests.stack import MERCHANT_HOST, Stack, wait_until
from tests.test_payout_flow import payout_body, post_payout

ALLOW_MERCHANT = DestinationPolicy.from_entries([MERCHANT_HOST])


@dataclass
class Receiver:
    """An HTTP endpoint that records the Host header of each request it gets."""

    hosts: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            with self.lock:
                self.hosts.append(request.headers.get("host", ""))
            return Response(status_code=204)

        async def moved(request: Request) -> Response:
            return RedirectResponse("http://127.0.0.1:1/hook", status_code=307)

        return Starlette(
            routes=[
                Route("/hook", hook, methods=["POST"]),
                Route("/moved", moved, methods=["POST"]),
            ]
        )


@pytest.fixture
def merchant() -> Iterator[tuple[Receiver, ThreadedServer]]:
    receiver = Receiver()
    with ThreadedServer(receiver.app(), host=MERCHANT_HOST) as server:
        yield receiver, server


@pytest.fixture
def internal() -> Iterator[tuple[Receiver, ThreadedServer]]:
    """Stands for anything internal: a sandbox, the gateway, a metadata service."""
    receiver = Receiver()
    with ThreadedServer(receiver.app(), host="127.0.0.1") as server:
        yield receiver, server


@dataclass
class resolving:  # noqa: N801 - reads as a call: resolving({...})
    """A resolver that answers from ``table`` and records its lookups."""

    table: dict[str, list[str]]
    calls: list[str] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        if host not in self.table:
            raise OSError(f"{host}: unknown name")
        return self.table[host]


# --------------------------------------------------------------------------- the transport


async def test_a_name_that_resolves_to_an_internal_address_is_refused_before_connecting(
    internal: tuple[Receiver, ThreadedServer],
) -> None:
    receiver, server = internal
    resolver = resolving({"shop.example": ["127.0.0.1"]})
    async with notification_client(ALLOW_MERCHANT, resolver=resolver) as http:
        with pytest.raises(DestinationRefused, match="127.0.0.1 is not a public address"):
            await http.post(f"http://shop.example:{server.port}/hook")
    assert receiver.hosts == []


@pytest.mark.parametrize(
    "addresses",
    [
        ["169.254.169.254"],  # a cloud's metadata service
        ["10.0.0.5"],
        ["93.184.216.34", "127.0.0.1"],  # one public answer does not launder a private one
        ["::1"],
        ["::ffff:127.0.0.1"],
        ["100.64.0.1"],  # shared (carrier-grade NAT) space
    ],
)
async def test_every_non_public_answer_is_refused(addresses: list[str]) -> None:
    resolver = resolving({"shop.example": addresses})
    async with notification_client(ALLOW_MERCHANT, resolver=resolver) as http:
        with pytest.raises(DestinationRefused):
            await http.post("http://shop.example/hook")


async def test_the_checked_address_is_the_one_connected_to_with_the_name_kept(
    merchant: tuple[Receiver, ThreadedServer],
) -> None:
    receiver, server = merchant
    resolver = resolving({"merchant.test": [MERCHANT_HOST]})
    async with notification_client(ALLOW_MERCHANT, resolver=resolver) as http:
        first = await http.post(f"http://merchant.test:{server.port}/hook")
        second = await http.post(f"http://merchant.test:{server.port}/hook")

    assert (first.status_code, second.status_code) == (204, 204)
    assert receiver.hosts == [f"merchant.test:{server.port}"] * 2
    # One lookup per request, checked and used: nothing resolves the name a second time.
    assert resolver.calls == ["merchant.test", "merchant.test"]


async def test_dns_rebinding_between_attempts_is_refused_at_the_second(
    merchant: tuple[Receiver, ThreadedServer],
) -> None:
    receiver, server = merchant
    answers = iter([[MERCHANT_HOST], ["127.0.0.1"]])

    async def rebinding(host: str, port: int) -> list[str]:
        return next(answers)

    async with notification_client(ALLOW_MERCHANT, resolver=rebinding) as http:
        assert (await http.post(f"http://rebind.test:{server.port}/hook")).status_code == 204
        with pytest.raises(DestinationRefused):
            await http.post(f"http://rebind.test:{server.port}/hook")
    assert len(receiver.hosts) == 1


async def test_literal_addresses_and_redirects(
    merchant: tuple[Receiver, ThreadedServer], internal: tuple[Receiver, ThreadedServer]
) -> None:
    (allowed, merchant_server), (hidden, internal_server) = merchant, internal
    async with notification_client(ALLOW_MERCHANT) as http:
        with pytest.raises(DestinationRefused):
            await http.post(f"http://127.0.0.1:{internal_server.port}/hook")
        moved = await http.post(f"{merchant_server.url}/moved")
    # A redirect is an answer, never followed (it points at an internal address here).
    assert moved.status_code == 307
    assert hidden.hosts == [] and allowed.hosts == []


def test_allowed_destinations_are_parsed_strictly() -> None:
    entry = AllowedDestination.parse("10.0.0.0/8:9000-9099")
    assert entry.permits(ipaddress.ip_address("10.1.2.3"), 9000)
    assert not entry.permits(ipaddress.ip_address("10.1.2.3"), 9100)
    assert AllowedDestination.parse("[::1]:8080").permits(ipaddress.ip_address("::1"), 8080)
    assert AllowedDestination.parse("127.0.0.2").permits(ipaddress.ip_address("127.0.0.2"), 1)
    for bad in ("localhost", "10.0.0.1:0", "10.0.0.1:9-1", "10.0.0.1:http", "[::1]8080"):
        with pytest.raises(ValueError, match="'"):
            AllowedDestination.parse(bad)


# --------------------------------------------------------------------------- the stack


def _loopback_name() -> str:
    """The machine's own host name, which resolves to a loopback address here: a name the
    gateway cannot judge from its text."""
    name = socket.gethostname()
    found = {info[4][0] for info in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)}
    assert found and not any(ipaddress.ip_address(a).is_global for a in found), (
        f"this test needs the host name {name!r} to resolve to a non-public address "
        f"(it resolves to {sorted(found)})"
    )
    return name


def test_a_literal_internal_notify_url_is_refused_and_starts_nothing(
    stack: Stack, reference: str
) -> None:
    sandbox = stack.sandbox_urls["caurisflux"]
    with stack.gateway() as http:
        answer = http.post(
            "/v1/payouts",
            json=payout_body(reference, notify_url=f"{sandbox}/_sandbox/reset"),
        )
        assert answer.status_code == 422, answer.text
        (problem,) = answer.json()["problems"]
        assert (problem["field"], problem["rule"]) == ("notify_url", "public_host")
        assert http.get(f"/v1/payouts/{reference}").status_code == 404


def test_a_name_resolving_to_a_sandbox_never_reaches_it(stack: Stack, reference: str) -> None:
    """The attack of issue 14: the notification would POST the sandbox's reset."""
    port = stack.sandbox_urls["caurisflux"].rsplit(":", 1)[1]
    hostile = f"http://{_loopback_name()}:{port}/_sandbox/reset"
    before = f"SSRF-{uuid.uuid4().hex[:8]}"
    post_payout(stack, payout_body(before))
    stack.wait_for_payout(before, {"succeeded"})

    post_payout(stack, payout_body(reference, notify_url=hostile))
    final = stack.wait_for_payout(reference, {"succeeded"})

    def given_up() -> dict[str, Any] | None:
        with stack.gateway() as http:
            state = http.get(f"/v1/payouts/{reference}").json()
        notes = state["notifications"]
        return state if notes and notes[0]["status"] == "given_up" else None

    state = wait_until(given_up, timeout=60, what="the notification given up")
    delivery = state["notifications"][0]
    assert "not a public address" in delivery["last_error"]
    # The sandbox still holds both payouts: nothing reset its ledger.
    for ref in (before, reference):
        entry = stack.ledger_entry(f"payout-acme-{ref}")
        assert entry is not None and entry["executions"] == 1
    assert final["status"] == "succeeded"
