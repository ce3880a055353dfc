"""Which webhook URLs may be called: https only, on a public host, except a receiver on this
machine when that is allowed (WEBHOOK_ALLOW_LOOPBACK, as under `make run`).

What can be refused without DNS is refused at create (`check_webhook_url`); the addresses the
host resolves to are vetted at each delivery (`webhook_transport`, with `Receiver.exempt`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from veo_relay.errors import InvalidRequest
from veo_relay.safe_urls import ParsedUrl, RefusedUrl, check_address, parse_url


@dataclass(frozen=True)
class Receiver:
    target: ParsedUrl
    # A receiver on this machine that may be called: plain http, and its loopback addresses.
    on_this_machine: bool

    def exempt(self, address: str) -> bool:
        """Whether `address` may be called although it is not public: a loopback address of a
        receiver on this machine."""
        return self.on_this_machine and ipaddress.ip_address(address).is_loopback


def receiver(url: str, allow_loopback: bool) -> Receiver:
    """The receiver `url` names; RefusedUrl when it is malformed or not https (and not a
    loopback receiver that may be called)."""
    target = parse_url(url)
    on_this_machine = allow_loopback and _is_loopback_host(target)
    if target.scheme != "https" and not on_this_machine:
        raise RefusedUrl("must be an https URL")
    return Receiver(target, on_this_machine)


def check_webhook_url(url: str, allow_loopback: bool) -> None:
    """What can be refused before any DNS lookup; the addresses are checked at each delivery."""
    try:
        found = receiver(url, allow_loopback)
    except RefusedUrl as exc:
        raise InvalidRequest("webhook_url", str(exc)) from None
    host = found.target.host
    if host == "localhost" and not found.on_this_machine:
        raise InvalidRequest("webhook_url", "must not name this machine")
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return
    if not found.on_this_machine and check_address(str(literal)) is not None:
        raise InvalidRequest("webhook_url", "must not be a private or special-purpose address")


def _is_loopback_host(target: ParsedUrl) -> bool:
    if target.host == "localhost":
        return True
    try:
        return ipaddress.ip_address(target.host).is_loopback
    except ValueError:
        return False
