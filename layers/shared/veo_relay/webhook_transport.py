"""The webhook POST: to a vetted address of the receiver, as the downloader connects
(`vetted_connect`), and only as far as the answer's status line, all within one deadline."""

from __future__ import annotations

import re
from functools import partial

from urllib3.connection import HTTPConnection
from urllib3.exceptions import ProtocolError

from veo_relay.deadlines import Deadline
from veo_relay.safe_urls import ParsedUrl, pinned_connection
from veo_relay.vetted_connect import vet_host
from veo_relay.webhook_urls import receiver

_CONNECT_TIMEOUT_SECONDS = 5.0
_MAX_STATUS_LINE_BYTES = 1024
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([0-9]{3})(?: [^\r\n]*)?\r?")


def post(
    url: str, headers: dict[str, str], body: bytes, allow_loopback: bool, timeout_seconds: float
) -> int:
    """POSTs to the first vetted address of `url` that can be reached (`vetted_connect`) and
    returns the answer's status, all within `timeout_seconds`: connecting, sending and the status
    line. Only the status line is read
    (never the headers or the body: no redirect is followed), then the connection is closed.

    One deadline for the whole exchange, because socket timeouts bound each read, not their sum:
    a receiver sending its answer a byte at a time would hold the sender as long as it liked.
    Raises RefusedUrl when the URL or any address it resolves to must not be called, and
    TimeoutError when the deadline passes.
    """
    deadline = Deadline.within(timeout_seconds)
    found = receiver(url, allow_loopback)
    host = vet_host(found.target, exempt=found.exempt)
    # The TCP connect and the TLS handshake each take at most the connect timeout (Python bounds
    # a handshake as a whole, however slowly its bytes come): half the deadline each, at most.
    connect_timeout = min(_CONNECT_TIMEOUT_SECONDS, timeout_seconds / 2)
    connection = host.connect(partial(_connected, found.target, connect_timeout), deadline)
    try:
        connection.timeout = _time_left(deadline)  # the socket's, while the request is sent
        connection.request(
            "POST",
            found.target.path,
            body=body,
            headers={**headers, "Host": found.target.host_header, "Connection": "close"},
        )
        return _status(connection, deadline)
    finally:
        connection.close()


def _connected(
    target: ParsedUrl, connect_timeout: float, address: str, seconds_left: float | None
) -> HTTPConnection:
    """A connection to the vetted `address`, connected within the connect timeout and the time
    left; ConnectTimeoutError when the address cannot be reached."""
    if seconds_left is not None:
        connect_timeout = min(connect_timeout, seconds_left)
    connection = pinned_connection(address, target, connect_timeout)
    try:
        connection.connect()
    except BaseException:
        connection.close()
        raise
    return connection


def _status(connection: HTTPConnection, deadline: Deadline) -> int:
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


def _time_left(deadline: Deadline) -> float:
    left = deadline.remaining()
    if left <= 0:
        raise TimeoutError("the receiver's status line did not come before the deadline")
    return left
