"""Unit tests for veo_relay.vetted_connect: every address vetted before any connection, then the
vetted addresses tried in turn within the deadline. No sockets: DNS is a fake resolver and each
connection attempt a recording fake."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, SSLError

from veo_relay import vetted_connect
from veo_relay.deadlines import Deadline
from veo_relay.safe_urls import RefusedUrl, UnresolvableHost, parse_url
from veo_relay.vetted_connect import NoTimeLeft, vet_host

TARGET = parse_url("https://media.example.com/v.mp4")
IPV6, IPV4, IPV4_OTHER = "2606:4700:4700::1111", "93.184.216.34", "93.184.216.35"


@dataclass
class FakeClock:
    """`time.monotonic`, moved on only by the test (and the attempts it makes)."""

    now: float = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(time, "monotonic", fake)
    return fake


@dataclass
class Journal:
    """What happened, in order: each address vetted, each connection attempted."""

    events: list[str] = field(default_factory=list)


@pytest.fixture
def journal(monkeypatch: pytest.MonkeyPatch) -> Journal:
    found = Journal()
    check_address = vetted_connect.check_address

    def recording_check(address: str) -> str | None:
        found.events.append(f"vet {address}")
        return check_address(address)

    monkeypatch.setattr(vetted_connect, "check_address", recording_check)
    return found


def resolver(*addresses: str):
    def resolve(host: str, port: int) -> tuple[str, ...]:
        assert (host, port) == (TARGET.host, TARGET.port)
        return addresses

    return resolve


@dataclass
class FakeAttempts:
    """Stands in for a caller's connection attempt: records the address and the seconds it was
    given; an address in `unreachable` cannot be reached, one in `failing` answers an error, and
    each attempt takes `takes` seconds of the clock."""

    journal: Journal = field(default_factory=Journal)
    clock: FakeClock | None = None
    unreachable: set[str] = field(default_factory=set)
    failing: dict[str, Exception] = field(default_factory=dict)
    takes: float = 0.0
    calls: list[tuple[str, float | None]] = field(default_factory=list)

    def __call__(self, address: str, seconds_left: float | None) -> str:
        self.journal.events.append(f"connect {address}")
        self.calls.append((address, seconds_left))
        if self.clock is not None:
            self.clock.now += self.takes
        if address in self.unreachable:
            refused = f"{address}: connection refused"
            raise NewConnectionError(None, refused)  # type: ignore[arg-type]
        if address in self.failing:
            raise self.failing[address]
        return f"connection to {address}"

    @property
    def addresses(self) -> list[str]:
        return [address for address, _ in self.calls]


# ------------------------------------------------------------------------------------- vetting


def test_every_address_is_vetted_before_any_connection(journal):
    # Given a host with three public addresses
    host = vet_host(TARGET, resolver=resolver(IPV6, IPV4, IPV4_OTHER))
    attempt = FakeAttempts(journal)

    # When it is connected to
    connection = host.connect(attempt, deadline=None)

    # Then all three were vetted first, and then only the first was connected to
    assert connection == f"connection to {IPV6}"
    assert journal.events == [f"vet {IPV6}", f"vet {IPV4}", f"vet {IPV4_OTHER}", f"connect {IPV6}"]


@pytest.mark.parametrize("refused", ["10.0.0.7", "127.0.0.1", "169.254.169.254", "fd00::1"])
@pytest.mark.parametrize("position", [0, 1, 2])
def test_one_refused_address_among_several_refuses_the_host(journal, refused, position):
    # Given a host whose DNS answer holds one private or special address among public ones
    addresses = [IPV4, IPV4_OTHER]
    addresses.insert(position, refused)

    # When it is vetted, Then the whole host is refused naming that address, nothing connected
    with pytest.raises(RefusedUrl, match=f"forbidden address: {refused}"):
        vet_host(TARGET, resolver=resolver(*addresses))
    assert not any(event.startswith("connect") for event in journal.events)


def test_an_exempt_address_passes_and_the_others_are_still_vetted():
    # Given a caller that may reach loopback (a receiver on this machine), and a host that
    # resolves to loopback and to a private address
    def loopback(address: str) -> bool:
        return address == "127.0.0.1"

    # When each is vetted, Then loopback passes alone, and the private address still refuses
    host = vet_host(TARGET, exempt=loopback, resolver=resolver("127.0.0.1"))
    assert host.addresses == ("127.0.0.1",)
    with pytest.raises(RefusedUrl, match="10.0.0.7"):
        vet_host(TARGET, exempt=loopback, resolver=resolver("127.0.0.1", "10.0.0.7"))


def test_a_host_dns_does_not_know_is_unresolvable():
    def unknown(host: str, port: int) -> tuple[str, ...]:
        raise UnresolvableHost(f"cannot resolve {host}")

    with pytest.raises(UnresolvableHost):
        vet_host(TARGET, resolver=unknown)


# ---------------------------------------------------------------------------------- connecting


def test_the_next_address_is_tried_when_one_cannot_be_reached():
    # Given a host whose IPv6 address refuses connections
    host = vet_host(TARGET, resolver=resolver(IPV6, IPV4))
    attempt = FakeAttempts(unreachable={IPV6})

    # When it is connected to, Then the IPv4 address is, second
    assert host.connect(attempt, deadline=None) == f"connection to {IPV4}"
    assert attempt.addresses == [IPV6, IPV4]


def test_when_no_address_can_be_reached_the_last_failure_is_raised():
    # Given a host none of whose addresses can be reached
    host = vet_host(TARGET, resolver=resolver(IPV6, IPV4))
    attempt = FakeAttempts(unreachable={IPV6, IPV4})

    # When it is connected to, Then each was tried, and the last one's failure is the answer
    with pytest.raises(ConnectTimeoutError, match=IPV4):
        host.connect(attempt, deadline=None)
    assert attempt.addresses == [IPV6, IPV4]


def test_an_address_that_answers_with_an_error_is_the_hosts_answer():
    # Given a host whose first address is reached but fails its TLS handshake
    host = vet_host(TARGET, resolver=resolver(IPV6, IPV4))
    attempt = FakeAttempts(failing={IPV6: SSLError("certificate verify failed")})

    # When it is connected to, Then that error is raised, and no other address is tried
    with pytest.raises(SSLError):
        host.connect(attempt, deadline=None)
    assert attempt.addresses == [IPV6]


def test_each_attempt_is_given_what_is_left_of_the_deadline_and_none_starts_after_it(clock):
    # Given a host with three addresses that each take 3 s to refuse, and 5 s to connect in
    host = vet_host(TARGET, resolver=resolver(IPV6, IPV4, IPV4_OTHER))
    attempt = FakeAttempts(clock=clock, unreachable={IPV6, IPV4, IPV4_OTHER}, takes=3)

    # When it is connected to
    with pytest.raises(NoTimeLeft) as timed_out:
        host.connect(attempt, Deadline.within(5))

    # Then the first attempt had 5 s, the second the 2 s left, and the third never started;
    # the deadline is a TimeoutError, caused by the last address that could not be reached
    assert attempt.calls == [(IPV6, 5), (IPV4, 2)]
    assert isinstance(timed_out.value, TimeoutError)
    assert isinstance(timed_out.value.__cause__, ConnectTimeoutError)


def test_a_deadline_already_passed_tries_no_address(clock):
    host = vet_host(TARGET, resolver=resolver(IPV4))
    attempt = FakeAttempts()

    with pytest.raises(NoTimeLeft):
        host.connect(attempt, Deadline(at=clock.now))
    assert attempt.calls == []
