"""Unit tests for veo_relay.downloader: no sockets.

DNS is a fake ``socket.getaddrinfo``; the transport (``downloader._send``) is replaced by a fake
that serves in-memory ``urllib3.HTTPResponse`` objects; creating a socket fails the test.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import re
import socket
import ssl
import struct
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import urllib3
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from urllib3.exceptions import InvalidHeader, NewConnectionError, ReadTimeoutError, SSLError

from offline.simulator.mp4 import SMALLEST_MP4_SIZE, iter_mp4
from tests.helpers import FakeDns
from veo_relay import downloader
from veo_relay.deadlines import Deadline
from veo_relay.downloader import (
    ContentEncodingError,
    DeadlineError,
    DownloadError,
    DownloadPolicy,
    HttpStatusError,
    NotMp4Error,
    ThroughputFloor,
    TooLargeError,
    TooManyRedirectsError,
    TooSlowError,
    TruncatedDownloadError,
    UnsafeUrlError,
    check_address,
    open_video,
)
from veo_relay.safe_urls import RefusedUrl, parse_url, resolve
from veo_relay.settings import origin_of

CDN = "https://cdn.example.com"
MP4_HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
MOOV = b"\x00\x00\x00\x08moov"


def mp4_header(size: int) -> bytes:
    """ftyp, an empty moov, then the header of an mdat box that runs to byte `size`."""
    mdat_size = size - len(MP4_HEAD) - len(MOOV)
    assert mdat_size >= 8, "too small for an MP4"
    return MP4_HEAD + MOOV + struct.pack(">I", mdat_size) + b"mdat"


def mp4(size: int) -> bytes:
    """A well-formed `size`-byte MP4 (top-level boxes ftyp, moov, mdat)."""
    head = mp4_header(size)
    return head + (bytes(range(256)) * (size // 256 + 1))[: size - len(head)]


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    fake = FakeDns({"cdn.example.com": ["93.184.216.34"], "other.example.com": ["93.184.216.35"]})
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    return fake


@dataclass
class FakeWeb:
    """Serves canned responses by URL; records what was sent and to which vetted addresses."""

    routes: dict[str, Callable[[], urllib3.HTTPResponse]] = field(default_factory=dict)
    sent: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    closed: int = 0

    def send(
        self, target, policy, cleanup: contextlib.ExitStack, deadline=None
    ) -> urllib3.HTTPResponse:
        self.sent.append((target.url, target.addresses))
        if target.url not in self.routes:
            raise AssertionError(f"unexpected request to {target.url}")
        response = self.routes[target.url]()
        cleanup.callback(self._count_close)
        return response

    def _count_close(self) -> None:
        self.closed += 1

    def video(
        self,
        url: str,
        body: bytes,
        *,
        content_type: str | None = "video/mp4",
        content_length: int | None | str = "auto",
        status: int = 200,
    ) -> None:
        headers = urllib3.HTTPHeaderDict()
        if content_type is not None:
            headers["Content-Type"] = content_type
        if content_length == "auto":
            headers["Content-Length"] = str(len(body))
        elif content_length is not None:
            headers["Content-Length"] = str(content_length)
        self.routes[url] = lambda: urllib3.HTTPResponse(
            body=io.BytesIO(body), headers=headers, status=status, preload_content=False
        )

    def redirect(self, url: str, location: str | None, status: int = 302) -> None:
        headers = {"Location": location} if location is not None else {}
        self.routes[url] = lambda: urllib3.HTTPResponse(
            body=io.BytesIO(b""), headers=headers, status=status, preload_content=False
        )


@pytest.fixture
def web(monkeypatch: pytest.MonkeyPatch, dns: FakeDns) -> FakeWeb:
    fake = FakeWeb()
    monkeypatch.setattr(downloader, "_send", fake.send)
    return fake


def policy(**overrides: object) -> DownloadPolicy:
    values: dict[str, object] = {
        "allowed_origins": frozenset({CDN, "https://other.example.com"}),
        "max_bytes": 1024 * 1024,
    }
    values.update(overrides)
    return DownloadPolicy(**values)  # type: ignore[arg-type]


def download(url: str, pol: DownloadPolicy | None = None, read_size: int = 4096) -> bytes:
    out = bytearray()
    with open_video(url, pol or policy()) as stream:
        while chunk := stream.read(read_size):
            out += chunk
    return bytes(out)


# ------------------------------------------------------------------------- origins and policy


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://cdn.example.com", "https://cdn.example.com:443"),
        ("https://CDN.Example.COM/a/b?c=d#e", "https://cdn.example.com:443"),
        ("HTTPS://cdn.example.com:8443/x", "https://cdn.example.com:8443"),
        ("http://127.0.0.1:8701/videos/1.mp4", "http://127.0.0.1:8701"),
        ("http://localhost", "http://localhost:80"),
        ("https://[2606:4700:0::1111]/", "https://[2606:4700::1111]:443"),
    ],
)
def test_origin_of_normalizes_scheme_host_and_port(url: str, origin: str) -> None:
    # Given a URL / When its origin is taken / Then it is lower-cased with the port filled in
    assert origin_of(url) == origin


def test_policy_normalizes_origins_given_as_urls() -> None:
    # Given origins written as URLs / When a policy is built / Then they are stored normalized
    pol = DownloadPolicy(
        allowed_origins=frozenset({"https://CDN.example.com/"}),
        trusted_local_origins=frozenset({"http://127.0.0.1:8701"}),
        max_bytes=10,
    )
    assert pol.allowed_origins == frozenset({"https://cdn.example.com:443"})
    assert pol.trusted_local_origins == frozenset({"http://127.0.0.1:8701"})
    assert (pol.connect_timeout, pol.read_timeout, pol.max_redirects) == (5, 60, 3)


@pytest.mark.parametrize(
    "overrides",
    [{"max_bytes": 0}, {"read_timeout": 0}, {"connect_timeout": -1}, {"max_redirects": -1}],
)
def test_policy_rejects_nonsense_limits(overrides: dict[str, object]) -> None:
    # Given a limit that would disable a defence / When building the policy / Then it fails
    with pytest.raises(ValueError):
        policy(**overrides)


# ------------------------------------------------------------- refused before DNS or connecting


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://cdn.example.com/v.mp4", "plain http"),
        ("ftp://cdn.example.com/v.mp4", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("gopher://cdn.example.com/", "scheme"),
        ("//cdn.example.com/v.mp4", "scheme"),
        ("cdn.example.com/v.mp4", "scheme"),
        ("https://user:pass@cdn.example.com/v.mp4", "userinfo"),
        ("https://cdn.example.com@evil.example/v.mp4", "userinfo"),
        ("https://@cdn.example.com/v.mp4", "userinfo"),
        ("https://evil.example/v.mp4", "not an allowed download origin"),
        ("https://cdn.example.com:8443/v.mp4", "not an allowed download origin"),
        ("https://sub.cdn.example.com/v.mp4", "not an allowed download origin"),
        ("https://cdn.example.com.evil.example/v.mp4", "not an allowed download origin"),
        ("https://cdn.example.com\\@evil.example/", "backslash"),
        ("https://cdn.example.com/a b", "whitespace"),
        ("https://cdn.example.com/\r\nX-Injected: 1", "control"),
        ("https://cdn.exämple.com/", "non-ASCII"),
        ("https://cdn.example.com:99999/", "out of range"),
        ("https://cdn.example.com:0/", "out of range"),
        ("https://cdn.example.com:+443/", "host[:port]"),
        ("https:///v.mp4", "host[:port]"),
        ("https://cdn..example.com/", "invalid host name"),
        ("https://cdn.example.com./", "invalid host name"),
        ("https://[::1/", "host[:port]"),
        ("", "empty"),
    ],
)
def test_bad_urls_are_refused_before_dns_and_connect(
    web: FakeWeb, dns: FakeDns, url: str, reason: str
) -> None:
    # Given a URL that breaks a rule / When opening it / Then it is refused without any lookup
    with pytest.raises(UnsafeUrlError, match=reason.replace("[", r"\[").replace("]", r"\]")) as exc:
        download(url)
    assert exc.value.retryable is False
    assert dns.queries == []
    assert web.sent == []


@pytest.mark.parametrize(
    "host",
    ["2130706433", "0x7f000001", "0x7f.1", "0x7f.0.0.1", "0177.0.0.1", "127.1", "127.0.1", "0"],
)
def test_integer_octal_hex_and_short_ipv4_forms_are_refused_even_if_allow_listed(
    web: FakeWeb, dns: FakeDns, host: str
) -> None:
    # Given an odd numeric IPv4 form that resolvers read as 127.0.0.1: it cannot even be
    # put on the allow-list
    url = f"https://{host}/v.mp4"
    with pytest.raises(UnsafeUrlError, match="non-canonical numeric IPv4"):
        policy(allowed_origins=frozenset({url, CDN}))
    # When opening it / Then the host is refused as a non-canonical IPv4 literal, before DNS
    with pytest.raises(UnsafeUrlError, match="non-canonical numeric IPv4"):
        download(url)
    assert dns.queries == []
    assert web.sent == []


# ------------------------------------------------------------------------ resolved addresses

FORBIDDEN_ADDRESSES = [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("::1", "loopback"),
    ("10.0.0.1", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("fd00::1", "private"),
    ("fc00::1", "private"),
    ("169.254.169.254", "link-local"),
    ("169.254.170.2", "link-local"),
    ("fe80::1", "link-local"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("0.1.2.3", "private"),  # "this network"
    ("240.0.0.1", "private|reserved"),
    ("255.255.255.255", "private|reserved"),
    ("100.64.0.1", "100.64.0.0/10"),  # shared address space
    ("100.127.255.254", "100.64.0.0/10"),
    ("192.0.0.8", "private|192.0.0.0/24"),
    ("192.0.2.1", "private"),  # documentation
    ("198.18.0.1", "private"),  # benchmarking
    ("2001:db8::1", "private"),
    ("fec0::1", "site|reserved|private|fec0::/10"),
    ("::ffff:127.0.0.1", "embeds IPv4 127.0.0.1"),
    ("::ffff:10.1.2.3", "embeds IPv4 10.1.2.3"),
    ("::ffff:169.254.169.254", "embeds IPv4 169.254.169.254"),
    ("::ffff:8.8.8.8", "private|reserved|::ffff:0:0/96"),  # mapped: never connect that way
    ("::127.0.0.1", "embeds IPv4 127.0.0.1"),  # IPv4-compatible
    ("::a9fe:a9fe", "embeds IPv4 169.254.169.254"),
    ("64:ff9b::7f00:1", "embeds IPv4 127.0.0.1"),  # NAT64
    ("64:ff9b::a9fe:a9fe", "embeds IPv4 169.254.169.254"),
    ("64:ff9b:1::a00:1", "embeds IPv4 10.0.0.1"),  # local-use NAT64
    ("2002:7f00:1::1", "embeds IPv4 127.0.0.1"),  # 6to4
    ("2002:a9fe:a9fe::1", "embeds IPv4 169.254.169.254"),
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "embeds IPv4 127.0.0.1"),  # Teredo client 127.0.0.1
    ("100::1", "reserved|private|100::/64"),
]


@pytest.mark.parametrize(("address", "reason"), FORBIDDEN_ADDRESSES)
def test_check_address_refuses_every_non_global_class(address: str, reason: str) -> None:
    # Given a non-global address / When checked / Then a reason is given
    problem = check_address(address)
    assert problem is not None
    assert re.search(reason, problem), problem


@pytest.mark.parametrize(("address", "reason"), FORBIDDEN_ADDRESSES)
def test_host_resolving_to_a_forbidden_address_is_refused_before_connecting(
    web: FakeWeb, dns: FakeDns, address: str, reason: str
) -> None:
    # Given an allow-listed host whose DNS answer is a non-global address
    dns.table["cdn.example.com"] = [address]
    web.video(f"{CDN}/v.mp4", mp4(100))
    # When opening it / Then it is refused and nothing is sent
    with pytest.raises(UnsafeUrlError, match="forbidden address") as exc:
        download(f"{CDN}/v.mp4")
    assert exc.value.retryable is False
    assert web.sent == []


def test_scoped_ipv6_answer_is_refused(web: FakeWeb, dns: FakeDns) -> None:
    # Given a DNS answer carrying an interface scope / When opening / Then it is refused
    dns.table["cdn.example.com"] = ["fe80::1%2"]
    with pytest.raises(UnsafeUrlError, match="scoped|link-local"):
        download(f"{CDN}/v.mp4")
    assert web.sent == []


def test_every_resolved_address_must_be_global(web: FakeWeb, dns: FakeDns) -> None:
    # Given a host that resolves to one public and one private address
    dns.table["cdn.example.com"] = ["93.184.216.34", "10.0.0.7"]
    web.video(f"{CDN}/v.mp4", mp4(100))
    # When opening it / Then it is refused (an attacker could pick which one we use)
    with pytest.raises(UnsafeUrlError, match="10.0.0.7"):
        download(f"{CDN}/v.mp4")
    assert web.sent == []


@pytest.mark.parametrize(
    "addresses", [["93.184.216.34"], ["2606:2800:220:1:248:1893:25c8:1946"], ["8.8.8.8", "1.1.1.1"]]
)
def test_global_addresses_pass_and_are_the_ones_connected_to(
    web: FakeWeb, dns: FakeDns, addresses: list[str]
) -> None:
    # Given an allow-listed host with public addresses
    dns.table["cdn.example.com"] = addresses
    web.video(f"{CDN}/v.mp4", mp4(100))
    # When downloading / Then the transport is handed exactly the vetted addresses
    assert download(f"{CDN}/v.mp4") == mp4(100)
    assert web.sent == [(f"{CDN}/v.mp4", tuple(addresses))]
    assert dns.queries == ["cdn.example.com"]


def test_dns_failure_is_retryable(web: FakeWeb, dns: FakeDns) -> None:
    # Given an allow-listed host that does not resolve / When opening / Then a retryable error
    del dns.table["cdn.example.com"]
    with pytest.raises(DownloadError, match="cannot resolve") as exc:
        download(f"{CDN}/v.mp4")
    assert exc.value.retryable is True
    assert not isinstance(exc.value, UnsafeUrlError)


def test_ip_literal_origin_is_still_address_checked(web: FakeWeb, dns: FakeDns) -> None:
    # Given a loopback IP literal wrongly put on the (public) allow-list
    dns.table["127.0.0.1"] = ["127.0.0.1"]
    pol = policy(allowed_origins=frozenset({"https://127.0.0.1"}))
    # When opening it / Then the address check still refuses it
    with pytest.raises(UnsafeUrlError, match="loopback"):
        download("https://127.0.0.1/v.mp4", pol)
    assert web.sent == []


# ------------------------------------------------------------------------ trusted local origin

LOCAL = "http://127.0.0.1:8701"


@pytest.fixture
def local_policy(dns: FakeDns) -> DownloadPolicy:
    dns.table["127.0.0.1"] = ["127.0.0.1"]
    dns.table["localhost"] = ["127.0.0.1"]
    return policy(trusted_local_origins=frozenset({LOCAL}))


def test_trusted_local_origin_may_be_plain_http_on_loopback(
    web: FakeWeb, local_policy: DownloadPolicy
) -> None:
    # Given the simulator's origin is trusted / When downloading from it / Then it works
    web.video(f"{LOCAL}/v.mp4", mp4(500))
    assert download(f"{LOCAL}/v.mp4", local_policy) == mp4(500)
    assert web.sent == [(f"{LOCAL}/v.mp4", ("127.0.0.1",))]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8702/v.mp4",  # another port on loopback
        "http://localhost:8701/v.mp4",  # same socket, different origin
        "http://127.0.0.1/v.mp4",
        "https://127.0.0.1:8701/v.mp4",  # https is a different origin
    ],
)
def test_only_the_trusted_local_origin_itself_is_trusted(
    web: FakeWeb, local_policy: DownloadPolicy, url: str
) -> None:
    # Given a trusted local origin / When opening a neighbour of it / Then it is refused
    with pytest.raises(UnsafeUrlError):
        download(url, local_policy)
    assert web.sent == []


# ----------------------------------------------------------------------------------- redirects


def test_redirects_within_the_limit_are_followed_and_each_hop_is_vetted(
    web: FakeWeb, dns: FakeDns
) -> None:
    # Given a 3-hop chain: absolute to another allowed host, relative path, relative to root
    web.redirect(f"{CDN}/start", "https://other.example.com/a/b")
    web.redirect("https://other.example.com/a/b", "c?sig=1", status=301)
    web.redirect("https://other.example.com/a/c?sig=1", "/final.mp4", status=307)
    web.video("https://other.example.com/final.mp4", mp4(300))
    # When downloading with max_redirects=3
    with open_video(f"{CDN}/start", policy(max_redirects=3)) as stream:
        body = stream.read()
        final_url = stream.url
    # Then the video arrives, every hop was resolved and vetted, and hops were released
    assert body == mp4(300)
    assert final_url == "https://other.example.com/final.mp4"
    assert [url for url, _ in web.sent] == [
        f"{CDN}/start",
        "https://other.example.com/a/b",
        "https://other.example.com/a/c?sig=1",
        "https://other.example.com/final.mp4",
    ]
    assert dns.queries == ["cdn.example.com"] + ["other.example.com"] * 3
    assert web.closed == 4


@pytest.mark.parametrize("max_redirects", [0, 1, 3])
def test_more_than_max_redirects_is_refused_without_sending_the_extra_hop(
    web: FakeWeb, max_redirects: int
) -> None:
    # Given an endless redirect loop
    for i in range(10):
        web.redirect(f"{CDN}/r{i}", f"/r{i + 1}", status=302 if i % 2 else 308)
    # When downloading / Then after max_redirects hops it stops, before requesting the next one
    with pytest.raises(TooManyRedirectsError) as exc:
        download(f"{CDN}/r0", policy(max_redirects=max_redirects))
    assert exc.value.retryable is False
    assert len(web.sent) == max_redirects + 1
    assert web.closed == max_redirects + 1


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("https://evil.example/v.mp4", "not an allowed download origin"),
        ("http://cdn.example.com/v.mp4", "plain http"),
        ("https://cdn.example.com:444/v.mp4", "not an allowed download origin"),
        ("https://user@cdn.example.com/v.mp4", "userinfo"),
        ("https://2130706433/", "non-canonical"),
        ("file:///etc/passwd", "scheme"),
        ("http://169.254.169.254/latest/meta-data/", "plain http"),
        ("https://rebind.example.com/v.mp4", "not an allowed download origin"),
    ],
)
def test_redirect_to_a_refused_url_is_refused_without_requesting_it(
    web: FakeWeb, location: str, reason: str
) -> None:
    # Given an allowed URL that redirects somewhere the policy forbids
    web.redirect(f"{CDN}/v.mp4", location)
    # When downloading / Then the Location is refused and never requested
    with pytest.raises(UnsafeUrlError, match=reason):
        download(f"{CDN}/v.mp4")
    assert [url for url, _ in web.sent] == [f"{CDN}/v.mp4"]


def test_redirect_to_an_allowed_host_now_resolving_private_is_refused(
    web: FakeWeb, dns: FakeDns
) -> None:
    # Given a redirect to an allowed host whose DNS answer is private
    dns.table["other.example.com"] = ["10.0.0.5"]
    web.redirect(f"{CDN}/v.mp4", "https://other.example.com/v.mp4")
    # When downloading / Then the hop's address check refuses it
    with pytest.raises(UnsafeUrlError, match="10.0.0.5"):
        download(f"{CDN}/v.mp4")
    assert len(web.sent) == 1


def test_redirect_without_location_is_a_permanent_error(web: FakeWeb) -> None:
    web.redirect(f"{CDN}/v.mp4", None)
    with pytest.raises(DownloadError, match="without Location") as exc:
        download(f"{CDN}/v.mp4")
    assert (exc.value.retryable, exc.value.status) == (False, 302)


# ---------------------------------------------------------------------------- malformed URLs

# Each is malformed (or breaks a parsing rule) wherever it appears: as the URL or as a Location.
MALFORMED_URLS = [
    # brackets
    "https://[::1",
    "https://[::1]x/",
    "https://[::1]]/",
    "https://[[::1]]/",
    "https://]/",
    "https://[/",
    "https://cdn.example.com]/",
    "https://[v1.x]/",
    "https://[::1%25eth0]/",
    "https://[0:0:0:0:0:0:0:0:0]/",
    "https://[::ffff:999.1.1.1]/",
    # ports
    "https://cdn.example.com:99999/",
    "https://cdn.example.com:65536/",
    "https://cdn.example.com:-1/",
    "https://cdn.example.com:0/",
    "https://cdn.example.com:/",
    "https://cdn.example.com:+443/",
    "https://cdn.example.com:443:443/",
    "https://cdn.example.com:0x1bb/",
    "https://cdn.example.com:1e3/",
    "https://cdn.example.com:\uff14\uff14\uff13/",
    "https://cdn.example.com:999999999999999999999/",
    # control characters and whitespace, wherever they are
    "https://cdn.exa\x00mple.com/",
    "https://cdn.example.com/\x00",
    "https://cdn.example.com/a\tb",
    "https://cdn.example.com\n/",
    "https://cdn.example.com/\r\nX-Injected: 1",
    "https://cdn.example.com/\x7f",
    "https://cdn.example.com/\x1b[31m",
    "https://cdn.example.com: 443/",
    # empty host
    "https://",
    "https:///",
    "https:///v.mp4",
    "https://:443/",
    "https://?x",
    "https://#x",
    "https:cdn.example.com/v.mp4",
    # userinfo
    "https://@cdn.example.com/",
    "https://a:b@cdn.example.com/",
    "https://cdn.example.com@cdn.example.com/",
    "https://%40@cdn.example.com/",
    "https://cdn.example.com\\@evil.example/",
    # IDNA garbage and non-ASCII
    "https://xn--/",
    "https://xn--zz.example.com/",
    "https://xn--abc-.example.com/",
    "https://xn--a.example.com/",
    "https://cdn.xn--.com/",
    "https://b\u00fccher.example/",
    "https://cdn.example.com/\u202e",
    # very long hosts, labels and URLs
    "https://" + "a" * 64 + ".example.com/",
    "https://" + ("a" * 63 + ".") * 4 + "com/",
    "https://cdn.example.com/" + "a" * 9000,
    # a path an HTTP client would read as a host
    "https://cdn.example.com//evil.example/v.mp4",
    # host names that are not names
    "https://cdn..example.com/",
    "https://-cdn.example.com/",
    "https://cdn.example.com./",
    "https://cdn.exa%6dple.com/",
    "https://2130706433/",
    "https://0x7f.1/",
]


@pytest.mark.parametrize("url", MALFORMED_URLS)
def test_a_malformed_url_is_an_unsafe_url_error_before_dns(
    web: FakeWeb, dns: FakeDns, url: str
) -> None:
    # Given a malformed URL / When opening it
    with pytest.raises(UnsafeUrlError) as exc:
        download(url)
    # Then it is refused for good (never retried), with no lookup and no request
    assert exc.value.retryable is False
    assert dns.queries == [] and web.sent == []


@pytest.mark.parametrize("location", MALFORMED_URLS)
def test_a_redirect_to_a_malformed_location_is_an_unsafe_url_error(
    web: FakeWeb, location: str
) -> None:
    # Given an allowed URL that redirects to a malformed Location
    web.redirect(f"{CDN}/v.mp4", location)
    # When downloading / Then the hop is refused for good, and nothing else is requested
    with pytest.raises(UnsafeUrlError) as exc:
        download(f"{CDN}/v.mp4")
    assert exc.value.retryable is False
    assert [url for url, _ in web.sent] == [f"{CDN}/v.mp4"]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://" + "a" * 64 + ".example.com/", "invalid host name"),
        ("https://" + ("a" * 63 + ".") * 4 + "com/", "longer than 253"),
        ("https://xn--zz.example.com/", "invalid host name"),
        ("https://xn--a.example.com/", "invalid host name"),  # Punycode for a C1 control
        ("https://cdn.example.com//evil.example/v.mp4", "begins with '//'"),
    ],
)
def test_parsing_refuses_names_dns_cannot_hold_and_paths_read_as_hosts(
    url: str, reason: str
) -> None:
    # Given a URL whose host no resolver takes (or whose path urllib3 reads as a host) / When
    # parsed / Then refused there, not left to fail later as a retryable lookup or transport error
    with pytest.raises(RefusedUrl, match=reason):
        parse_url(url)


def test_well_formed_idna_hosts_still_parse() -> None:
    # Given A-labels that are Punycode for real non-ASCII names / When parsed / Then accepted
    assert parse_url("https://xn--strae-oqa.example/v.mp4").host == "xn--strae-oqa.example"
    assert parse_url("https://xn--d1acufc.xn--p1ai/").host == "xn--d1acufc.xn--p1ai"


def test_a_name_dns_cannot_encode_is_refused_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a resolver that cannot encode the name (Python's IDNA codec) / When resolving
    def unencodable(*args: object, **kwargs: object) -> None:
        raise UnicodeError("encoding with 'idna' codec failed (UnicodeError: label too long)")

    monkeypatch.setattr(socket, "getaddrinfo", unencodable)
    # Then the URL is refused (an UnresolvableHost would be retried)
    with pytest.raises(RefusedUrl, match="cannot be encoded"):
        resolve("cdn.example.com", 443)


_URL_PIECES = st.sampled_from(
    ["https://", "http://", "https:", "//", "/", "cdn.example.com", "other.example.com", "[", "]",
     "::1", ":", "@", "%", "?", "#", ".", "..", "xn--", "-", "443", "99999", "-1", "0x", "\\",
     "\x00", "\t", "\n", "\x7f", " ", "\u00e9", "a" * 70, "v.mp4"]
)  # fmt: skip
_MALFORMED_CANDIDATES = st.one_of(
    st.text(max_size=60),
    st.lists(_URL_PIECES, max_size=12).map("".join),
    st.lists(_URL_PIECES, max_size=8).map(lambda pieces: "https://" + "".join(pieces)),
)


@settings(
    max_examples=400,
    deadline=None,
    database=None,  # no .hypothesis/ directory in the repository
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(url=_MALFORMED_CANDIDATES, as_location=st.booleans())
def test_fuzzed_urls_and_locations_end_only_in_download_errors(
    dns: FakeDns, monkeypatch: pytest.MonkeyPatch, url: str, as_location: bool
) -> None:
    # Given any string as the URL, or as the Location of an allowed URL's redirect (an empty one
    # is a redirect without Location, tested on its own), and a server answering 404 to every
    # request that gets through
    assume(url)
    sent: list[str] = []

    def send(target, pol, cleanup, deadline=None):  # type: ignore[no-untyped-def]
        sent.append(target.url)
        if as_location and len(sent) == 1:  # the first request only: no redirect loop
            headers = {"Location": url}
            return urllib3.HTTPResponse(body=io.BytesIO(b""), headers=headers, status=302)
        return urllib3.HTTPResponse(body=io.BytesIO(b""), status=404, preload_content=False)

    monkeypatch.setattr(downloader, "_send", send)
    # When downloading
    with pytest.raises(DownloadError) as exc:
        download(f"{CDN}/start" if as_location else url)
    # Then the only outcomes are a refusal before any request to it, or the server's answer
    requested = len(sent) > (1 if as_location else 0)
    if requested:
        assert isinstance(exc.value, HttpStatusError), exc.value
    else:
        assert isinstance(exc.value, UnsafeUrlError), exc.value


# ------------------------------------------------------------------------------------- statuses


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (410, False),
        (204, False),
        (206, False),
        (304, False),
        (408, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
    ],
)
def test_final_status_other_than_200_is_an_error_with_retryability(
    web: FakeWeb, status: int, retryable: bool
) -> None:
    # Given a final response with a non-200 status / When opening / Then HttpStatusError
    web.video(f"{CDN}/v.mp4?X-Amz-Signature=secret", mp4(100), status=status)
    with pytest.raises(HttpStatusError) as exc:
        download(f"{CDN}/v.mp4?X-Amz-Signature=secret")
    assert exc.value.status == status
    assert exc.value.retryable is retryable
    assert "secret" not in str(exc.value)  # signed query strings are not logged


# --------------------------------------------------------------------------- content checks


@pytest.mark.parametrize(
    "content_type", ["video/mp4", "Video/MP4; codecs=avc1", "application/octet-stream"]
)
def test_mp4_and_octet_stream_content_types_are_accepted(web: FakeWeb, content_type: str) -> None:
    # Given an MP4 body with an acceptable type / When downloading / Then it passes
    web.video(f"{CDN}/v.mp4", mp4(100), content_type=content_type)
    with open_video(f"{CDN}/v.mp4", policy()) as stream:
        assert stream.content_type == content_type.split(";")[0].lower()
        assert stream.read() == mp4(100)


@pytest.mark.parametrize("content_type", ["text/html", "video/webm", "image/png", "", None])
def test_other_content_types_are_refused(web: FakeWeb, content_type: str | None) -> None:
    # Given an MP4 body served with a wrong or missing type / When opening / Then NotMp4Error
    web.video(f"{CDN}/v.mp4", mp4(100), content_type=content_type)
    with pytest.raises(NotMp4Error) as exc:
        download(f"{CDN}/v.mp4")
    assert exc.value.retryable is False


@pytest.mark.parametrize(
    "body",
    [b"<html><body>not a video</body></html>", b"\x1aE\xdf\xa3webm....", b"\x00\x00\x00", b""],
)
def test_body_not_starting_with_ftyp_box_is_refused(web: FakeWeb, body: bytes) -> None:
    # Given a video/mp4 response whose first box is not ftyp / When opening / Then NotMp4Error
    web.video(f"{CDN}/v.mp4", body)
    with pytest.raises(NotMp4Error, match="ftyp"):
        download(f"{CDN}/v.mp4")


def box(box_type: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + box_type + payload


HTML = b"<!doctype html><html><body><script>alert(document.domain)</script></body></html>"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (MP4_HEAD + HTML, "runs past the end"),  # a polyglot: "<!do" read as a box size
        (MP4_HEAD + box(b"moov", b"") + box(b"html", HTML), "no mdat"),
        (mp4(4000)[:3000], "runs past the end"),  # truncated: mdat announces 4,000 bytes
        (mp4(4000) + b"\n<html>", "trailing bytes"),
        (mp4(4000) + HTML, "runs past the end"),
        (MP4_HEAD + box(b"mdat", bytes(100)), "no moov"),
        (MP4_HEAD + box(b"moov", b"") + b"\x00\x00\x00\x04mdat", "size 4"),
        (MP4_HEAD + box(b"mo\x00v", b"") + box(b"mdat", b""), "printable type"),
        (box(b"ftyp", bytes(5000)) + box(b"moov", b"") + box(b"mdat", b""), "'ftyp' box of"),
        (box(b"moov", b"") + MP4_HEAD + box(b"mdat", b""), "'ftyp' box of"),
    ],
    ids=[
        "ftyp-then-html",
        "html-box-instead-of-mdat",
        "truncated",
        "trailing-bytes",
        "trailing-page",
        "no-moov",
        "box-size-below-its-header",
        "unprintable-type",
        "oversized-ftyp",
        "ftyp-not-first",
    ],
)
def test_a_body_whose_boxes_do_not_chain_to_its_end_is_not_an_mp4(
    web: FakeWeb, body: bytes, reason: str
) -> None:
    # Given a video/mp4 response that starts like an MP4 but is not one
    web.video(f"{CDN}/v.mp4", body)
    # When downloading it / Then NotMp4Error (for good) by the last read, never a whole body
    with pytest.raises(NotMp4Error, match=reason) as exc:
        download(f"{CDN}/v.mp4")
    assert exc.value.retryable is False


def test_a_whole_body_whose_last_box_runs_past_its_end_is_not_an_mp4(web: FakeWeb) -> None:
    # Given an MP4 cut off inside its mdat, its size announced as what is sent: all of it came
    web.video(f"{CDN}/v.mp4", mp4(10_000)[:6000], content_length="auto")
    # When downloading / Then refused for good: the file itself is cut, asking again gets the same
    with pytest.raises(NotMp4Error, match="past the end") as exc:
        download(f"{CDN}/v.mp4")
    assert exc.value.retryable is False


def test_an_unannounced_body_ending_inside_a_box_is_truncated_and_asked_again(
    web: FakeWeb,
) -> None:
    # Given an MP4 cut off inside its mdat, with no Content-Length: the connection may have been
    # cut as well as the file
    web.video(f"{CDN}/v.mp4", mp4(10_000)[:6000], content_length=None)
    # When downloading / Then a truncated download, retried, not a final refusal of the video
    with pytest.raises(TruncatedDownloadError, match="past the end") as exc:
        download(f"{CDN}/v.mp4")
    assert exc.value.retryable is True


@pytest.mark.parametrize(
    "size",
    [SMALLEST_MP4_SIZE, SMALLEST_MP4_SIZE + 1, 300_000, 1_000_003],
    ids=["smallest", "one-byte-mdat", "300k", "1m"],
)
@pytest.mark.parametrize("resolution", ["720p", "1080p", "4k"])
def test_the_simulators_mp4_passes_the_box_check(web: FakeWeb, size: int, resolution: str) -> None:
    # Given the simulator's MP4 bytes (ftyp, moov with an mvhd and a trak, mdat to the end)
    body = b"".join(iter_mp4(size, "seed", resolution=resolution))
    web.video(f"{CDN}/v.mp4", body)
    # When downloaded / Then accepted whole
    assert download(f"{CDN}/v.mp4") == body


@pytest.mark.parametrize("content_length", ["auto", None], ids=["announced", "unannounced"])
def test_largesize_and_to_the_end_boxes_are_accepted(
    web: FakeWeb, content_length: str | None
) -> None:
    # Given an MP4 whose moov has a 64-bit largesize (size field 1) and whose mdat runs to the end
    # of the file (size field 0), with a free box between them
    moov = struct.pack(">I", 1) + b"moov" + struct.pack(">Q", 16 + 8) + box(b"mvhd", b"")
    body = MP4_HEAD + moov + box(b"free", b"pad") + b"\x00\x00\x00\x00mdat" + bytes(5000)
    web.video(f"{CDN}/v.mp4", body, content_length=content_length)
    # When downloaded / Then accepted whole
    assert download(f"{CDN}/v.mp4") == body


def test_a_largesize_past_the_end_is_refused(web: FakeWeb) -> None:
    # Given an mdat whose 64-bit largesize is far beyond the file
    mdat = struct.pack(">I", 1) + b"mdat" + struct.pack(">Q", 1 << 40)
    web.video(f"{CDN}/v.mp4", MP4_HEAD + box(b"moov", b"") + mdat + bytes(1000))
    # When opening / Then refused as soon as the header has arrived
    with pytest.raises(NotMp4Error, match="runs past the end"):
        download(f"{CDN}/v.mp4")


@pytest.mark.parametrize("encoding", ["gzip", "GZIP", "deflate", "br", "zstd", "gzip, identity"])
def test_a_content_coding_is_refused_and_never_decoded(web: FakeWeb, encoding: str) -> None:
    # Given a compressed MP4 (1 MiB that takes a few KiB on the wire)
    headers = {"Content-Type": "video/mp4", "Content-Encoding": encoding}
    body = gzip.compress(mp4(1 << 20))
    web.routes[f"{CDN}/v.mp4"] = lambda: urllib3.HTTPResponse(
        body=io.BytesIO(body), headers=headers, status=200, preload_content=False
    )
    # When opening it / Then refused for good, naming the coding, before any byte is read
    with pytest.raises(ContentEncodingError, match="Content-Encoding") as exc:
        download(f"{CDN}/v.mp4")
    assert exc.value.retryable is False


@pytest.mark.parametrize("encoding", ["identity", "Identity", ""])
def test_the_identity_coding_is_accepted(web: FakeWeb, encoding: str) -> None:
    # Given an MP4 sent as it is, saying so / When downloaded / Then accepted
    headers = {"Content-Type": "video/mp4", "Content-Encoding": encoding}
    web.routes[f"{CDN}/v.mp4"] = lambda: urllib3.HTTPResponse(
        body=io.BytesIO(mp4(1000)), headers=headers, status=200, preload_content=False
    )
    assert download(f"{CDN}/v.mp4") == mp4(1000)


def test_ftyp_check_reads_only_the_first_chunk(web: FakeWeb) -> None:
    # Given a large MP4 / When opened / Then nothing was consumed yet beyond one chunk
    web.video(f"{CDN}/v.mp4", mp4(900_000))
    with open_video(f"{CDN}/v.mp4", policy()) as stream:
        assert stream.bytes_read == 0
        assert stream._received <= downloader._CHUNK_SIZE
        assert stream.read(8) == MP4_HEAD[:8]


def test_announced_length_over_the_cap_is_refused_before_reading(web: FakeWeb) -> None:
    # Given Content-Length above max_bytes / When opening / Then TooLargeError at once
    web.video(f"{CDN}/v.mp4", mp4(1000), content_length=2_000_000)
    with pytest.raises(TooLargeError, match="Content-Length") as exc:
        download(f"{CDN}/v.mp4", policy(max_bytes=1_000_000))
    assert exc.value.retryable is False


def test_unannounced_body_over_the_cap_fails_while_reading(web: FakeWeb) -> None:
    # Given no Content-Length and a body one byte over the cap
    web.video(f"{CDN}/v.mp4", mp4(300_001), content_length=None)
    with open_video(f"{CDN}/v.mp4", policy(max_bytes=300_000)) as stream:
        assert stream.content_length is None
        # When reading it all / Then TooLargeError, and it stays raised
        with pytest.raises(TooLargeError):
            while stream.read(65536):
                pass
        with pytest.raises(TooLargeError):
            stream.read(1)
        assert stream.bytes_read <= 300_000


def test_body_exactly_at_the_cap_is_accepted(web: FakeWeb) -> None:
    web.video(f"{CDN}/v.mp4", mp4(300_000), content_length=None)
    assert len(download(f"{CDN}/v.mp4", policy(max_bytes=300_000))) == 300_000


def test_fewer_bytes_than_content_length_is_a_retryable_truncation(web: FakeWeb) -> None:
    # Given Content-Length 50,000 but only 30,000 bytes before the connection ends
    web.video(f"{CDN}/v.mp4", mp4(30_000), content_length=50_000)
    # When reading to the end / Then TruncatedDownloadError (retryable)
    with pytest.raises(TruncatedDownloadError) as exc:
        download(f"{CDN}/v.mp4")
    assert exc.value.retryable is True


@pytest.mark.parametrize("value", ["abc", "-1", "1e3"])
def test_invalid_content_length_is_refused(web: FakeWeb, value: str) -> None:
    web.video(f"{CDN}/v.mp4", mp4(100), content_length=value)
    with pytest.raises(DownloadError) as exc:
        download(f"{CDN}/v.mp4")
    assert exc.value.retryable is False


def test_repeated_identical_content_length_is_accepted(web: FakeWeb) -> None:
    web.video(f"{CDN}/v.mp4", mp4(100), content_length="100, 100")
    assert download(f"{CDN}/v.mp4") == mp4(100)


# --------------------------------------------------------------------------------- the stream


@pytest.mark.parametrize("read_size", [1, 7, 8, 4096, 1 << 20])
def test_stream_counts_and_hashes_what_it_hands_out(web: FakeWeb, read_size: int) -> None:
    # Given a 200,000-byte MP4
    body = mp4(200_000)
    web.video(f"{CDN}/v.mp4", body)
    with open_video(f"{CDN}/v.mp4", policy()) as stream:
        assert stream.content_length == 200_000
        # When read in read_size pieces / Then each read is full-size until the end
        sizes = []
        while chunk := stream.read(read_size):
            sizes.append(len(chunk))
        assert all(size == read_size for size in sizes[:-1])
        assert stream.bytes_read == len(body)
        assert stream.sha256_hex() == hashlib.sha256(body).hexdigest()
        assert stream.readable() and not stream.seekable()
    # And leaving the context closes it
    assert stream.closed


def test_hash_covers_large_and_small_reads_in_order(web: FakeWeb) -> None:
    # Given a 5 MiB MP4, several of the stream's chunks
    body = mp4(5 * 1024 * 1024 + 123)
    web.video(f"{CDN}/v.mp4", body)
    with open_video(f"{CDN}/v.mp4", policy(max_bytes=len(body))) as stream:
        # When it is read in large and small pieces, mixed
        for size in (2 << 20, 7, 1 << 20, 3, 1 << 20):
            stream.read(size)
        stream.read()
        # Then the hash is the body's, in order
        assert stream.sha256_hex() == hashlib.sha256(body).hexdigest()
        assert stream.bytes_read == len(body)


def test_stream_holds_constant_memory_for_a_large_body(
    monkeypatch: pytest.MonkeyPatch, dns: FakeDns
) -> None:
    # Given a 64 MiB body produced lazily by the "socket"
    size = 64 * 1024 * 1024

    class LazyBody(io.RawIOBase):
        def __init__(self) -> None:
            self.head = mp4_header(size)
            self.left = size - len(self.head)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
            if self.head:
                n = len(self.head)
                buffer[:n] = self.head
                self.head = b""
                return n
            n = min(len(buffer), self.left)
            buffer[:n] = b"\x5a" * n
            self.left -= n
            return n

    def send(target, pol, cleanup, deadline=None):  # type: ignore[no-untyped-def]
        return urllib3.HTTPResponse(
            body=io.BufferedReader(LazyBody()),
            headers={"Content-Type": "video/mp4", "Content-Length": str(size)},
            status=200,
            preload_content=False,
        )

    monkeypatch.setattr(downloader, "_send", send)
    # When it is read through in 1 MiB pieces
    tracemalloc.start()
    try:
        with open_video(f"{CDN}/v.mp4", policy(max_bytes=size)) as stream:
            while stream.read(1 << 20):
                pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Then all of it was seen and peak memory stayed a few MiB
    assert stream.bytes_read == size
    assert peak < 8 * 1024 * 1024, peak


class Trickle(io.RawIOBase):
    """A body whose first bytes come at once, then one byte every `interval` seconds."""

    def __init__(self, body: bytes, fast: int, interval: float) -> None:
        self.body, self.sent, self.fast, self.interval = body, 0, fast, interval

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        if self.sent >= self.fast:
            time.sleep(self.interval)
        n = min(len(buffer), max(self.fast - self.sent, 1), len(self.body) - self.sent)
        buffer[:n] = self.body[self.sent : self.sent + n]
        self.sent += n
        return n


def serve_trickle(monkeypatch: pytest.MonkeyPatch, body: bytes, interval: float) -> None:
    def send(target, pol, cleanup, deadline=None):  # type: ignore[no-untyped-def]
        return urllib3.HTTPResponse(
            body=io.BufferedReader(Trickle(body, 1000, interval)),
            headers={"Content-Type": "video/mp4", "Content-Length": str(len(body))},
            status=200,
            preload_content=False,
        )

    monkeypatch.setattr(downloader, "_send", send)


def test_a_trickling_body_ends_at_the_throughput_floor(
    monkeypatch: pytest.MonkeyPatch, dns: FakeDns
) -> None:
    # Given a server that sends 1,000 bytes, then one byte every 20 ms (50 B/s)
    serve_trickle(monkeypatch, mp4(100_000), interval=0.02)
    floor = ThroughputFloor(bytes_per_second=1000, window_seconds=0.3, grace_seconds=0.1)
    started = time.monotonic()
    # When it is downloaded with a floor of 1,000 B/s
    with pytest.raises(TooSlowError, match="under the 1000 bytes/s minimum") as exc:
        download(f"{CDN}/v.mp4", policy(throughput_floor=floor))
    # Then the download ends after the grace period and one window, retryable
    assert time.monotonic() - started < 2
    assert exc.value.retryable is True


def test_a_download_ends_at_its_deadline(monkeypatch: pytest.MonkeyPatch, dns: FakeDns) -> None:
    # Given a server trickling one byte every 20 ms, and a deadline 0.3 s away
    serve_trickle(monkeypatch, mp4(100_000), interval=0.02)
    started = time.monotonic()
    # When it is downloaded without a floor / Then it ends at the deadline, retryable
    with (
        pytest.raises(DeadlineError, match="deadline") as exc,
        open_video(f"{CDN}/v.mp4", policy(), Deadline.within(0.3)) as stream,
    ):
        while stream.read(65536):
            pass
    assert time.monotonic() - started < 1.5
    assert exc.value.retryable is True


# ---------------------------------------------------- transport: vetted addresses tried in turn


@dataclass
class FakePool:
    address: str
    timeout: urllib3.Timeout
    answer: Callable[[], urllib3.HTTPResponse] | None  # None: the address cannot be reached
    closed: bool = False

    def urlopen(self, method: str, path: str, **kwargs: object) -> urllib3.HTTPResponse:
        if self.answer is None:
            refused = f"{self.address}: connection refused"
            raise NewConnectionError(None, refused)  # type: ignore[arg-type]
        return self.answer()

    def close(self) -> None:
        self.closed = True


@dataclass
class FakePools:
    """Stands in for ``pinned_pool`` (the real ``_send`` runs): one pool per vetted address,
    recorded; one on an ``unreachable`` address cannot connect, the others serve ``body``."""

    body: bytes
    unreachable: set[str] = field(default_factory=set)
    pools: list[FakePool] = field(default_factory=list)

    def __call__(
        self, address: str, target: object, timeout: urllib3.Timeout, ca_certs: str | None = None
    ) -> FakePool:
        answer = None if address in self.unreachable else self._video
        pool = FakePool(address, timeout, answer)
        self.pools.append(pool)
        return pool

    def _video(self) -> urllib3.HTTPResponse:
        headers = {"Content-Type": "video/mp4", "Content-Length": str(len(self.body))}
        return urllib3.HTTPResponse(
            body=io.BytesIO(self.body), headers=headers, status=200, preload_content=False
        )


@pytest.fixture
def pools(monkeypatch: pytest.MonkeyPatch) -> FakePools:
    fake = FakePools(mp4(300))
    monkeypatch.setattr(downloader, "pinned_pool", fake)
    return fake


def test_a_host_whose_first_address_cannot_be_reached_is_downloaded_from_its_second(
    dns: FakeDns, pools: FakePools
) -> None:
    # Given an allow-listed host with an IPv6 and an IPv4 address, the IPv6 one unreachable
    dns.table["cdn.example.com"] = ["2606:2800:220:1:248:1893:25c8:1946", "93.184.216.34"]
    pools.unreachable = {"2606:2800:220:1:248:1893:25c8:1946"}

    # When downloading
    body = download(f"{CDN}/v.mp4")

    # Then the addresses were tried in DNS's order, the first pool closed, the video came whole
    assert body == mp4(300)
    assert [pool.address for pool in pools.pools] == [
        "2606:2800:220:1:248:1893:25c8:1946",
        "93.184.216.34",
    ]
    assert pools.pools[0].closed


def test_a_host_none_of_whose_addresses_can_be_reached_is_a_retryable_error(
    dns: FakeDns, pools: FakePools
) -> None:
    # Given an allow-listed host whose two addresses are both unreachable
    dns.table["cdn.example.com"] = ["93.184.216.34", "93.184.216.35"]
    pools.unreachable = {"93.184.216.34", "93.184.216.35"}

    # When downloading / Then it cannot connect, retryable, after trying each address
    with pytest.raises(DownloadError, match="cannot connect") as exc:
        download(f"{CDN}/v.mp4")
    assert exc.value.retryable is True
    assert [pool.address for pool in pools.pools] == ["93.184.216.34", "93.184.216.35"]
    assert all(pool.closed for pool in pools.pools)


def test_each_address_is_given_no_longer_than_what_is_left_of_the_deadline(
    dns: FakeDns, pools: FakePools
) -> None:
    # Given timeouts longer than the copy's deadline (2 s away)
    # When downloading
    with open_video(f"{CDN}/v.mp4", policy(connect_timeout=5, read_timeout=60), Deadline.within(2)):
        pass

    # Then the connection's timeouts are cut to the time left
    (pool,) = pools.pools
    assert pool.timeout.connect_timeout is not None and 0 < pool.timeout.connect_timeout <= 2
    assert pool.timeout.read_timeout is not None and 0 < pool.timeout.read_timeout <= 2


def test_a_deadline_already_passed_connects_to_nothing(dns: FakeDns, pools: FakePools) -> None:
    # Given a copy whose deadline has passed / When downloading
    # Then it ends at the deadline, retryable, before any connection
    with (
        pytest.raises(DeadlineError, match="deadline") as exc,
        open_video(f"{CDN}/v.mp4", policy(), Deadline.within(0)),
    ):
        pass
    assert exc.value.retryable is True
    assert pools.pools == []


# ---------------------------------------------------------------------- transport error mapping


@pytest.mark.parametrize(
    ("exc", "retryable"),
    [
        (NewConnectionError(None, "refused"), True),  # type: ignore[arg-type]
        (ReadTimeoutError(None, "/", "read timed out"), True),  # type: ignore[arg-type]
        (SSLError(ssl.SSLCertVerificationError(1, "certificate verify failed")), False),
        (SSLError(ssl.SSLEOFError(8, "EOF occurred")), True),
        (ConnectionResetError(104, "reset"), True),
        (InvalidHeader("Content-Length contained multiple unmatching values (10, 20)"), False),
    ],
)
def test_transport_errors_map_to_download_errors(exc: Exception, retryable: bool) -> None:
    # Given a transport failure / When translated / Then a DownloadError with retryability
    error = downloader._translate(exc, "https://cdn.example.com/v.mp4?sig=secret")
    assert isinstance(error, DownloadError)
    assert error.retryable is retryable
    assert "secret" not in str(error)


def test_error_while_reading_is_translated_and_sticky(
    monkeypatch: pytest.MonkeyPatch, dns: FakeDns
) -> None:
    # Given a body that times out after its first 600,000 bytes
    class Flaky(io.RawIOBase):
        good = io.BytesIO(mp4(600_000))

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
            n = self.good.readinto(buffer)
            if n:
                return n
            raise TimeoutError("timed out")

    def send(target, pol, cleanup, deadline=None):  # type: ignore[no-untyped-def]
        return urllib3.HTTPResponse(
            body=io.BufferedReader(Flaky()),  # read1, as http.client's response has
            headers={"Content-Type": "video/mp4"},
            status=200,
            preload_content=False,
        )

    monkeypatch.setattr(downloader, "_send", send)
    with open_video(f"{CDN}/v.mp4", policy()) as stream:
        # When reading past the first bytes / Then a retryable DownloadError, every time
        with pytest.raises(DownloadError) as first:
            stream.read(1_000_000)
        with pytest.raises(DownloadError) as second:
            stream.read(1)
    assert first.value.retryable is True
    assert second.value is first.value


def test_open_video_is_a_context_manager_yielding_a_stream() -> None:
    assert isinstance(open_video, Callable)
    cm = open_video("ftp://x", policy())
    assert isinstance(cm, contextlib.AbstractContextManager)
    with pytest.raises(UnsafeUrlError):
        cm.__enter__()
