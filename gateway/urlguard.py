"""Which addresses an image URL may reach, and a network backend that connects to checked ones only.

A host name is resolved once, every address it resolves to is checked, and the connection goes to a
checked address: there is no second lookup that a rebinding DNS server could answer differently.
Literal addresses are checked as written, including the legacy numeric forms (`2130706433`,
`0177.0.0.1`, `0x7f.1`) that C resolvers read as IPv4. Refused: loopback, private, link-local,
multicast, reserved, unspecified, IPv4-mapped, 6to4 and Teredo IPv6, and every other address that is
not globally reachable, unless it lies in one of the allowed networks (`GATEWAY_IMAGE_URL_ALLOW`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import httpcore

from gateway.errors import BadInput

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# Resolves a host name to its addresses (as text); `socket.getaddrinfo` unless tests stub it.
Resolver = Callable[[str, int], Awaitable[list[str]]]
_LEGACY_IPV4 = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$", re.IGNORECASE)
_CLASSES = (
    ("is_loopback", "a loopback"),
    ("is_link_local", "a link-local"),
    ("is_multicast", "a multicast"),
    ("is_unspecified", "an unspecified"),
    ("is_reserved", "a reserved"),
    ("is_private", "a private"),
)


class RefusedAddress(BadInput):
    """The URL's host is, or resolves to, an address the gateway does not fetch from."""


def literal_address(host: str) -> Address | None:
    """The address a host written as an IP literal means, legacy numeric IPv4 forms included."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def address_problem(address: Address) -> str | None:
    """Why an address is not one to fetch from (`a private address`), or None when it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return "an IPv4-mapped IPv6 address"
        if address.sixtofour is not None or address.teredo is not None:
            return "a 6to4 or Teredo IPv6 address"
    for attribute, name in _CLASSES:
        if getattr(address, attribute):
            return f"{name} address"
    if not address.is_global:
        return "a special-purpose address"
    return None


class AddressPolicy:
    """Checks addresses against the special classes and the allowed networks."""

    def __init__(self, allow: Iterable[Network]) -> None:
        self.allow = tuple(allow)

    def check(self, host: str, address: Address) -> None:
        """Raise RefusedAddress unless `address` is public or allowed."""
        if any(address.version == net.version and address in net for net in self.allow):
            return
        problem = address_problem(address)
        if problem is not None:
            via = "" if host == str(address) else f" resolves to {address}, which is"
            raise RefusedAddress(
                f"the image URL's host {host}{via or ' is'} {problem}; this gateway does not fetch from it"
            )


async def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses from the system resolver."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to addresses `policy` accepts: a host name is
    resolved once with `resolver` and the connection goes to one of the checked addresses (TLS still
    verifies the certificate against the host name, which httpcore passes on for SNI)."""

    def __init__(
        self,
        policy: AddressPolicy,
        resolver: Resolver = system_resolver,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.policy = policy
        self.resolver = resolver
        self.inner = inner or httpcore.AnyIOBackend()

    async def addresses(self, host: str, port: int) -> list[str]:
        """The checked addresses to connect to for `host`; RefusedAddress if any is refused."""
        literal = literal_address(host)
        if literal is not None:
            self.policy.check(host, literal)
            return [str(literal)]
        try:
            found = await self.resolver(host, port)
        except OSError as exc:
            raise BadInput(f"the image URL's host {host} could not be resolved ({exc})") from None
        if not found:
            raise BadInput(f"the image URL's host {host} could not be resolved")
        addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in found]
        for address in addresses:  # all of them: a name that also resolves to a refused address is refused
            self.policy.check(host, address)
        return [str(a) for a in addresses]

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        error: Exception | None = None
        for address in await self.addresses(host, port):
            try:
                return await self.inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)
