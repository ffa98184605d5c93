"""Which URLs Crossgen may post to: no server-side request forgery through a person's webhook.

People choose chat and webhook URLs, so a URL could point at an internal service or a cloud
metadata endpoint. A URL is used only when it is https, its host is on the operator's allow-list,
and every address its name resolves to is public. The request then goes to the address that was
checked (the name is kept for TLS and the Host header), so DNS cannot change between check and use.
"""

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

import httpx

from crossgen_notifications.settings import NotificationsSettings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeUrl(ValueError):
    """A URL Crossgen refuses to post to; the message says why."""


@dataclass(frozen=True)
class Destination:
    url: httpx.URL  # with the checked address as host
    host: str  # the name, for the Host header and TLS
    netloc: str


@dataclass(frozen=True)
class UrlPolicy:
    allowed_hosts: tuple[str, ...]
    allow_http: bool = False
    allow_private: bool = False

    @classmethod
    def of(cls, settings: NotificationsSettings) -> "UrlPolicy":
        return cls(
            tuple(h.lower() for h in settings.outbound_allowed_hosts),
            settings.outbound_allow_http,
            settings.outbound_allow_private,
        )

    def check(self, url: str) -> httpx.URL:
        """What can be told without DNS: scheme, credentials, host on the list, literal address."""
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise UnsafeUrl(f"not a URL: {exc}") from exc
        schemes = ("https", "http") if self.allow_http else ("https",)
        if parsed.scheme not in schemes:
            raise UnsafeUrl(f"the URL must use {' or '.join(schemes)}")
        if parsed.userinfo:
            raise UnsafeUrl("the URL must not carry a user name or password")
        host = parsed.raw_host.decode("ascii").lower()
        if not any(_matches(host, pattern) for pattern in self.allowed_hosts):
            raise UnsafeUrl(f"host {host!r} is not on the allow-list")
        if (literal := _literal(host)) is not None:
            self._ensure_public(literal)
        return parsed

    async def resolve(self, url: str) -> Destination:
        """Check ``url`` fully, its resolved addresses included; where to connect to."""
        parsed = self.check(url)
        host = parsed.raw_host.decode("ascii")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            found = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise UnsafeUrl(f"cannot resolve {host!r}: {exc}") from exc
        # A scoped IPv6 address (fe80::1%eth0) is link-local: its scope does not matter.
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found]
        for address in addresses:
            self._ensure_public(address)
        return Destination(
            url=parsed.copy_with(host=str(addresses[0])), host=host, netloc=parsed.netloc.decode()
        )

    def _ensure_public(self, address: IPAddress) -> None:
        if not self.allow_private and (not address.is_global or address.is_multicast):
            raise UnsafeUrl(f"{address} is a private, loopback or reserved address")


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None  # a name, checked once resolved


def _matches(host: str, pattern: str) -> bool:
    """``hooks.slack.com`` matches itself; ``*.example.com`` matches any subdomain of it."""
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and host != pattern[2:]
    return host == pattern
