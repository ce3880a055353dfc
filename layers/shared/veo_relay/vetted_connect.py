"""Vet, then connect: how the downloader and the webhook sender reach a host that a URL from
outside names.

The host is resolved once, and every address it resolves to is vetted (`safe_urls.check_address`)
before anything connects: one refused address refuses the host, since whoever controls its DNS
could otherwise steer us to that one. The connection then goes to a vetted address itself (the
caller's attempt pins it: urllib3 resolves nothing), so a second DNS answer (rebinding) cannot
swap it. The addresses are tried in the order DNS gave them (its preference: IPv6 before IPv4,
then each A record), the next one only when an address cannot be reached, and none once the
deadline has passed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from urllib3.exceptions import ConnectTimeoutError

from veo_relay.deadlines import Deadline
from veo_relay.safe_urls import ParsedUrl, RefusedUrl, check_address, resolve

T = TypeVar("T")
# An attempt on one vetted address, given the seconds left before the deadline (None: no
# deadline) to bound itself with. It raises ConnectTimeoutError (NewConnectionError included)
# when the address cannot be reached; anything else it raises is the host's answer.
Attempt = Callable[[str, float | None], T]


class NoTimeLeft(TimeoutError):
    """The deadline came before any vetted address could be reached."""


def no_exemption(address: str) -> bool:
    return False


@dataclass(frozen=True)
class VettedHost:
    """A URL's host and every address it resolved to, each one vetted (made by `vet_host`)."""

    target: ParsedUrl
    addresses: tuple[str, ...]

    def connect(self, attempt: Attempt[T], deadline: Deadline | None) -> T:
        """What `attempt` gives on the first address, in order, that can be reached.

        Raises the last ConnectTimeoutError when none can be, NoTimeLeft when the deadline comes
        before one is, and whatever else an attempt raises at once (a TLS failure, say: another
        address of the same host would not answer differently).
        """
        unreachable: ConnectTimeoutError | None = None
        for address in self.addresses:
            left = None if deadline is None else deadline.remaining()
            if left is not None and left <= 0:
                raise NoTimeLeft(f"no time left to connect to {self.target.host}") from unreachable
            try:
                return attempt(address, left)
            except ConnectTimeoutError as exc:
                unreachable = exc
        assert unreachable is not None, "a host resolves to at least one address"
        raise unreachable


def vet_host(
    target: ParsedUrl,
    *,
    exempt: Callable[[str], bool] = no_exemption,
    resolver: Callable[[str, int], tuple[str, ...]] = resolve,
) -> VettedHost:
    """`target`'s host, resolved, with every address vetted. Raises RefusedUrl when any address
    is refused and not `exempt` (an address the caller may reach anyway: a trusted local origin,
    a loopback receiver under `make run`), and UnresolvableHost when DNS gives no answer."""
    addresses = resolver(target.host, target.port)
    for address in addresses:
        problem = check_address(address)
        if problem is not None and not exempt(address):
            raise RefusedUrl(f"{target.host} resolves to a forbidden address: {problem}")
    return VettedHost(target, addresses)
