"""The webhook POST: to a vetted address of the receiver (the downloader's SSRF defences), and
only as far as the answer's status line, all within one deadline."""

from __future__ import annotations

import ipaddress
import re
import time

from urllib3.connection import HTTPConnection
from urllib3.exceptions import ProtocolError

from veo_relay.safe_urls import RefusedUrl, check_address, pinned_connection, resolve
from veo_relay.webhook_urls import receiver

_CONNECT_TIMEOUT_SECONDS = 5.0
_MAX_STATUS_LINE_BYTES = 1024
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([0-9]{3})(?: [^\r\n]*)?\r?")


def post(
    url: str, headers: dict[str, str], body: bytes, allow_loopback: bool, timeout_seconds: float
) -> int:
    """POSTs to a vetted address of `url` and returns the answer's status, all within
    `timeout_seconds`: connecting, sending and the status line. Only the status line is read
    (never the headers or the body: no redirect is followed), then the connection is closed.

    One deadline for the whole exchange, because socket timeouts bound each read, not their sum:
    a receiver sending its answer a byte at a time would hold the sender as long as it liked.
    Raises RefusedUrl when the URL or any address it resolves to must not be called, and
    TimeoutError when the deadline passes.
    """
    deadline = time.monotonic() + timeout_seconds
    found = receiver(url, allow_loopback)
    target = found.target
    addresses = resolve(target.host, target.port)
    for address in addresses:
        problem = check_address(address)
        if problem is not None and not (
            found.on_this_machine and ipaddress.ip_address(address).is_loopback
        ):
            raise RefusedUrl(f"{target.host} resolves to a forbidden address: {problem}")
    # The TCP connect and the TLS handshake each take at most the connect timeout (Python bounds
    # a handshake as a whole, however slowly its bytes come): half the deadline each, at most.
    connect_timeout = min(_CONNECT_TIMEOUT_SECONDS, timeout_seconds / 2)
    connection = pinned_connection(addresses[0], target, connect_timeout)
    try:
        connection.connect()
        connection.timeout = _time_left(deadline)  # the socket's, while the request is sent
        connection.request(
            "POST",
            target.path,
            body=body,
            headers={**headers, "Host": target.host_header, "Connection": "close"},
        )
        return _status(connection, deadline)
    finally:
        connection.close()


def _status(connection: HTTPConnection, deadline: float) -> int:
    """The status in the answer's status line, read by the deadline."""
    sock = connection.sock
    assert sock is not None, "connected"
    received = b""
    while b"\n" not in received:
        if len(received) > _MAX_STATUS_LINE_BYTES:
            raise ProtocolError(f"status line longer than {_MAX_STATUS_LINE_BYTES} bytes")
        sock.settimeout(_time_left(deadline))
        chunk = sock.recv(_MAX_STATUS_LINE_BYTES)
        if not chunk:
            raise ProtocolError("the receiver closed the connection before its status line")
        received += chunk
    line = received.split(b"\n", 1)[0]
    match = _STATUS_LINE.fullmatch(line)
    if match is None:
        raise ProtocolError(f"not an HTTP status line: {line[:80]!r}")
    return int(match[1])


def _time_left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the receiver's status line did not come before the deadline")
    return left
