"""Unit tests for veo_relay.webhook_transport: the POST's SSRF defences, the receiver's addresses
tried in turn, and its one deadline. No sockets: DNS is a fake ``socket.getaddrinfo`` and each
connection (``webhook_transport.pinned_connection``) a recording fake."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from urllib3.exceptions import NewConnectionError, ProtocolError

from tests.helpers import FakeDns
from veo_relay import webhook_transport
from veo_relay.safe_urls import RefusedUrl, UnresolvableHost
from veo_relay.webhook_transport import post

PUBLIC_IP = "93.184.216.34"


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    fake = FakeDns(
        {
            "hooks.example.com": [PUBLIC_IP],
            "localhost": ["127.0.0.1"],
            "internal.example.com": ["10.0.0.5"],
            "metadata.example.com": ["169.254.169.254"],
            "mixed.example.com": [PUBLIC_IP, "192.168.1.10"],
            "mapped.example.com": ["::ffff:10.0.0.5"],
            "ula.example.com": ["fd00::1"],
            "rebind.example.com": ["127.0.0.1"],
        }
    )
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    return fake


@dataclass
class FakeSocket:
    answer: bytes
    timeouts: list[float] = field(default_factory=list)

    def settimeout(self, seconds: float) -> None:
        self.timeouts.append(seconds)

    def recv(self, size: int) -> bytes:
        chunk, self.answer = self.answer[:size], self.answer[size:]
        return chunk


@dataclass
class FakeConnection:
    address: str
    target: Any
    connect_timeout: float
    answer: bytes
    reachable: bool = True
    on_connect: Callable[[], None] = lambda: None
    requests: list[dict[str, Any]] = field(default_factory=list)
    sock: FakeSocket | None = None
    timeout: float | None = None
    closed: bool = False

    def connect(self) -> None:
        self.on_connect()
        if not self.reachable:
            refused = f"{self.address}: connection refused"
            raise NewConnectionError(self, refused)  # type: ignore[arg-type]
        self.sock = FakeSocket(self.answer)

    def request(self, method: str, path: str, **kwargs: Any) -> None:
        self.requests.append({"method": method, "path": path, **kwargs})

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeConnections:
    """Stands in for `pinned_connection`: records the vetted address each connection would go to;
    every receiver answers `answer`, but one on an `unreachable` address refuses to connect."""

    answer: bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
    unreachable: set[str] = field(default_factory=set)
    on_connect: Callable[[], None] = lambda: None
    connections: list[FakeConnection] = field(default_factory=list)

    def __call__(self, address: str, target: Any, connect_timeout: float) -> FakeConnection:
        connection = FakeConnection(
            address,
            target,
            connect_timeout,
            self.answer,
            reachable=address not in self.unreachable,
            on_connect=self.on_connect,
        )
        self.connections.append(connection)
        return connection


@dataclass
class FakeClock:
    """`time.monotonic`, moved on only by the test."""

    now: float = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> FakeConnections:
    fake = FakeConnections()
    monkeypatch.setattr(webhook_transport, "pinned_connection", fake)
    return fake


# ----------------------------------------------------------------------------------------- post


@pytest.mark.parametrize(
    "host",
    [
        "internal.example.com",
        "metadata.example.com",
        "mixed.example.com",
        "mapped.example.com",
        "ula.example.com",
        "rebind.example.com",
    ],
)
@pytest.mark.parametrize("allow_loopback", [False, True])
def test_post_refuses_a_host_that_resolves_to_a_private_address(
    host, allow_loopback, dns, connections
):
    # Given an https URL whose name resolves (wholly or partly) to a non-public address
    url = f"https://{host}/hook"

    # When it is posted to, Then it is refused after DNS, before any connection
    with pytest.raises(RefusedUrl, match="forbidden address"):
        post(url, {}, b"{}", allow_loopback, 15)
    assert dns.queries == [host]
    assert connections.connections == []


def test_post_sends_to_the_vetted_address_with_the_hosts_name(dns, connections):
    # Given a public receiver
    headers = {"webhook-id": "msg_1", "Content-Type": "application/json"}

    # When it is posted to
    status = post("https://hooks.example.com/veo?tenant=1", headers, b'{"a": 1}', False, 15)

    # Then the request went to the address DNS gave, with the name as Host, and the connection
    # was closed once the status line was read
    assert status == 200
    (connection,) = connections.connections
    assert connection.address == PUBLIC_IP
    assert connection.target.host == "hooks.example.com"
    assert connection.closed
    (request,) = connection.requests
    assert request["method"] == "POST"
    assert request["path"] == "/veo?tenant=1"
    assert request["body"] == b'{"a": 1}'
    assert request["headers"]["Host"] == "hooks.example.com"
    assert request["headers"]["Connection"] == "close"
    assert request["headers"]["webhook-id"] == "msg_1"


def test_post_returns_an_error_status_rather_than_raising(dns, connections):
    # Given a receiver that answers 503
    connections.answer = b"HTTP/1.1 503 Service Unavailable\r\n\r\n"

    # When it is posted to, Then the status comes back for the caller's retry decision
    assert post("https://hooks.example.com/veo", {}, b"{}", False, 15) == 503


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/hook", "https://127.0.0.1:8443/hook", "http://localhost:8080/"]
)
def test_post_to_loopback_only_with_allow_loopback(url, dns, connections):
    # Given a loopback receiver
    # When posted to without allow_loopback, Then it is refused and nothing connects
    with pytest.raises(RefusedUrl):
        post(url, {}, b"{}", False, 15)
    assert connections.connections == []

    # When posted to with allow_loopback, Then it goes to 127.0.0.1
    assert post(url, {}, b"{}", True, 15) == 200
    assert [c.address for c in connections.connections] == ["127.0.0.1"]


def test_a_public_name_resolving_to_loopback_is_refused_even_with_allow_loopback(dns, connections):
    # Given a name (not localhost) that DNS points at 127.0.0.1, over plain http
    # When posted to with allow_loopback, Then it is refused: only a loopback host may be http
    with pytest.raises(RefusedUrl):
        post("http://rebind.example.com:8080/hook", {}, b"{}", True, 15)
    assert connections.connections == []


def test_localhost_resolving_elsewhere_is_refused_with_allow_loopback(dns, connections):
    # Given a localhost that resolves to a private, not a loopback, address
    dns.table["localhost"] = ["10.0.0.7"]

    # When posted to with allow_loopback, Then it is refused
    with pytest.raises(RefusedUrl, match="forbidden address"):
        post("http://localhost:8080/hook", {}, b"{}", True, 15)
    assert connections.connections == []


def test_post_to_an_unresolvable_host_is_a_transient_error(dns, connections):
    # Given a name DNS does not know
    # When posted to, Then it fails as transient (retried), and nothing connects
    with pytest.raises(UnresolvableHost):
        post("https://nowhere.example.com/hook", {}, b"{}", False, 15)
    assert connections.connections == []


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        (b"HTTP/1.1 204 No Content\r\n\r\n", 204),
        (b"HTTP/1.0 410 Gone\r\n", 410),
        (b"HTTP/1.1 200\r\n", 200),  # no reason phrase
        (b"HTTP/1.1 500 Internal Server Error\n", 500),  # a bare LF
    ],
)
def test_post_reads_the_status_from_the_status_line(answer, status, dns, connections):
    # Given a receiver's answer
    connections.answer = answer
    # When it is posted to, Then its status line's status is the answer
    assert post("https://hooks.example.com/veo", {}, b"{}", False, 15) == status


@pytest.mark.parametrize(
    "answer",
    [
        b"",  # closed at once
        b"HTTP/1.1 200 OK",  # closed inside the status line
        b"SMTP 200 ready\r\n",
        b"HTTP/2 200\r\n",
        b"HTTP/1.1 20 OK\r\n",
        b"HTTP/1.1 " + b"2" * 2000,  # a status line without end
    ],
)
def test_post_refuses_an_answer_without_an_http_status_line(answer, dns, connections):
    # Given a receiver whose answer does not start with an HTTP/1.x status line
    connections.answer = answer
    # When it is posted to, Then it is a protocol error (retried), and the connection is closed
    with pytest.raises(ProtocolError):
        post("https://hooks.example.com/veo", {}, b"{}", False, 15)
    assert all(c.closed for c in connections.connections)


def test_each_read_of_the_status_line_waits_only_for_what_is_left_of_the_deadline(dns, connections):
    # Given a receiver that answers
    # When it is posted to within 6 s in all
    post("https://hooks.example.com/veo", {}, b"{}", False, 6)

    # Then the connect timeout is at most half of it (the TCP connect and the TLS handshake each
    # take at most that), and the send and each read are given only the time left
    (connection,) = connections.connections
    assert connection.connect_timeout == 3
    assert connection.timeout is not None and 0 < connection.timeout <= 6
    assert connection.sock is not None
    assert all(0 < t <= connection.timeout for t in connection.sock.timeouts)


def test_a_deadline_already_passed_raises_timeout_before_reading(dns, connections, monkeypatch):
    # Given a clock that jumps past the deadline once connected
    clock = FakeClock()
    monkeypatch.setattr(time, "monotonic", clock)
    connections.on_connect = lambda: clock.advance(100)

    # When it is posted to, Then the attempt times out (a retryable OSError), connection closed
    with pytest.raises(TimeoutError):
        post("https://hooks.example.com/veo", {}, b"{}", False, 15)
    (connection,) = connections.connections
    assert connection.closed
    assert connection.requests == []


def test_a_receiver_whose_first_address_cannot_be_reached_is_posted_to_on_its_second(
    dns, connections
):
    # Given a receiver with an IPv6 and an IPv4 address, whose IPv6 one refuses connections
    dns.table["dual.example.com"] = ["2606:4700:4700::1111", PUBLIC_IP]
    connections.unreachable = {"2606:4700:4700::1111"}

    # When it is posted to
    status = post("https://dual.example.com/veo", {}, b"{}", False, 15)

    # Then the addresses were tried in DNS's order, the first connection closed, and the request
    # went over the second
    assert status == 200
    first, second = connections.connections
    assert (first.address, second.address) == ("2606:4700:4700::1111", PUBLIC_IP)
    assert first.closed and first.requests == []
    (request,) = second.requests
    assert request["headers"]["Host"] == "dual.example.com"


def test_a_receiver_none_of_whose_addresses_can_be_reached_is_a_connection_error(dns, connections):
    # Given a receiver whose every address refuses connections
    dns.table["down.example.com"] = [PUBLIC_IP, "93.184.216.35"]
    connections.unreachable = {PUBLIC_IP, "93.184.216.35"}

    # When it is posted to, Then it fails as a connection error (retried), each address tried
    with pytest.raises(NewConnectionError):
        post("https://down.example.com/veo", {}, b"{}", False, 15)
    assert [c.address for c in connections.connections] == [PUBLIC_IP, "93.184.216.35"]
    assert all(c.closed for c in connections.connections)


def test_no_address_is_tried_once_the_deadline_has_passed(dns, connections, monkeypatch):
    # Given a receiver with two addresses, the first of which takes the whole deadline to refuse
    clock = FakeClock()
    monkeypatch.setattr(time, "monotonic", clock)
    dns.table["slow.example.com"] = [PUBLIC_IP, "93.184.216.35"]
    connections.unreachable = {PUBLIC_IP}
    connections.on_connect = lambda: clock.advance(6)

    # When it is posted to within 6 s, Then it times out without trying the second address
    with pytest.raises(TimeoutError):
        post("https://slow.example.com/veo", {}, b"{}", False, 6)
    assert [c.address for c in connections.connections] == [PUBLIC_IP]
