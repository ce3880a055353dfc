"""Vetting URLs and addresses that came from outside, before anything connects to them.

Shared by the downloader (provider result URLs) and the webhook sender (client URLs): both parse
strictly (WHATWG-style numeric hosts refused, no userinfo), then `vetted_connect` resolves once,
refuses every address that is not globally routable (`check_address`), and connects to a vetted
address only (`pinned_pool`, `pinned_connection`: no DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection

DEFAULT_PORTS = {"https": 443, "http": 80}


class RefusedUrl(ValueError):
    """The URL, or an address it resolves to, must not be contacted."""


class UnresolvableHost(OSError):
    """DNS gave no usable answer (transient: worth another try)."""


_NETLOC_RE = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^\[\]:]+)(?::(?P<port>[0-9]{1,5}))?")
_HOST_LABEL_RE = re.compile(r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?")
# WHATWG URL: a host whose last label is numeric (decimal, or 0x-hex) is parsed as IPv4, in any
# of the legacy forms (2130706433, 0x7f.1, 0177.0.0.1, 127.1). Only canonical dotted quads pass.
_NUMERIC_LABEL_RE = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)")
# DNS limits (RFC 1035): longer names cannot be resolved, whatever DNS says; refused as malformed.
_MAX_HOST_LENGTH = 253
_MAX_LABEL_LENGTH = 63
_IDNA_PREFIX = "xn--"

# Special-purpose ranges refused explicitly, whatever this Python's ``is_global`` thinks
# (its tables changed in 3.11.x, 3.12.4 and 3.13).
_BLOCKED_NETWORKS: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",
        "100.64.0.0/10",  # shared address space (carrier-grade NAT)
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata services
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, includes 255.255.255.255
        "::/96",  # unspecified, loopback and deprecated IPv4-compatible addresses
        "::ffff:0:0/96",  # IPv4-mapped (embedded address also checked)
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments, includes Teredo 2001::/32
        "2001:db8::/32",  # documentation
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # deprecated site-local
        "ff00::/8",  # multicast
    )
)
_NAT64_NETWORKS = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


@dataclass(frozen=True)
class ParsedUrl:
    scheme: str
    host: str  # lower-case hostname, or bare IP literal (IPv6 without brackets)
    port: int
    path: str  # path + query, never empty; the fragment is dropped

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self._host_for_url}:{self.port}"

    @property
    def host_header(self) -> str:
        if self.port == DEFAULT_PORTS[self.scheme]:
            return self._host_for_url
        return f"{self._host_for_url}:{self.port}"

    @property
    def _host_for_url(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host


def parse_url(url: str) -> ParsedUrl:
    _check_characters(url)
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise RefusedUrl(f"URL has no valid host[:port]: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise RefusedUrl(f"scheme {scheme or '(none)'!r} is not allowed")
    if "@" in parts.netloc:
        raise RefusedUrl("URL contains userinfo (credentials before '@')")
    match = _NETLOC_RE.fullmatch(parts.netloc)
    if match is None:
        raise RefusedUrl("URL has no valid host[:port]")
    host = _canonical_host(match.group("host"))
    port = int(match.group("port")) if match.group("port") else DEFAULT_PORTS[scheme]
    if not 0 < port < 65536:
        raise RefusedUrl(f"port {port} is out of range")
    path = parts.path or "/"
    if path.startswith("//"):
        # An HTTP client reads "//x" at the start of a request target as a host (urllib3 does).
        raise RefusedUrl("URL path begins with '//'")
    if parts.query:
        path = f"{path}?{parts.query}"
    return ParsedUrl(scheme=scheme, host=host, port=port, path=path)


def resolve_location(base: str, location: str) -> str:
    """The URL a redirect's Location names, relative to ``base`` (RFC 3986 reference resolution);
    a malformed one is refused, never repaired: urljoin would drop tabs and newlines, read
    "https://" as ``base`` itself and raise ValueError on "https://[::1". The result is still to
    be vetted (``parse_url``)."""
    location = location.strip(" \t")  # optional whitespace around a header value
    _check_characters(location)
    try:
        parts = urlsplit(location)
    except ValueError as exc:
        raise RefusedUrl(f"URL has no valid host[:port]: {exc}") from None
    if parts.scheme:  # absolute: whole on its own
        parse_url(location)
        return location
    if location.startswith("//"):  # network-path: base's scheme, its own host
        absolute = f"{urlsplit(base).scheme}:{location}"
        parse_url(absolute)
        return absolute
    return urljoin(base, location)


def _check_characters(url: str) -> None:
    if not isinstance(url, str) or not url:
        raise RefusedUrl("empty or non-string URL")
    if len(url) > 8192:
        raise RefusedUrl("URL longer than 8192 characters")
    if not url.isascii():
        raise RefusedUrl("URL contains non-ASCII characters")
    if any(ch <= " " or ch == "\x7f" or ch == "\\" for ch in url):
        raise RefusedUrl("URL contains whitespace, control characters or backslashes")


def _canonical_host(raw: str) -> str:
    if raw.startswith("["):
        try:
            return ipaddress.IPv6Address(raw[1:-1]).compressed
        except ValueError:
            raise RefusedUrl("invalid IPv6 literal host") from None
    host = raw.lower()
    if len(host) > _MAX_HOST_LENGTH:
        raise RefusedUrl(f"host name longer than {_MAX_HOST_LENGTH} characters")
    labels = host.split(".")
    if not all(_is_host_label(label) for label in labels):
        raise RefusedUrl(f"invalid host name {host!r}")
    if _NUMERIC_LABEL_RE.fullmatch(labels[-1]):
        try:
            return str(ipaddress.IPv4Address(host))  # rejects 127.1, 0x7f.1, 017.0.0.1, 2130706433
        except ValueError:
            raise RefusedUrl(f"non-canonical numeric IPv4 host {host!r}") from None
    return host


def _is_host_label(label: str) -> bool:
    if len(label) > _MAX_LABEL_LENGTH or not _HOST_LABEL_RE.fullmatch(label):
        return False
    return not label.startswith(_IDNA_PREFIX) or _is_a_label(label)


def _is_a_label(label: str) -> bool:
    """Whether an ``xn--`` label is Punycode for a non-ASCII name that encodes back to it (the
    shape of an IDNA A-label; the IDNA2008 character tables are left to DNS)."""
    encoded = label[len(_IDNA_PREFIX) :]
    try:
        name = encoded.encode("ascii").decode("punycode")
    except UnicodeError:
        return False
    return (
        not name.isascii()
        and all(ch.isprintable() and not ch.isspace() and ch != "." for ch in name)
        and name.encode("punycode").decode("ascii") == encoded
    )


def check_address(address: str) -> str | None:
    """Why ``address`` (an IP string as getaddrinfo returns it) must not be contacted, or None."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"{address!r} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        problem = _ipv6_problem(address, ip)
        if problem is not None:
            return problem
    return _range_problem(address, ip)


def _ipv6_problem(address: str, ip: ipaddress.IPv6Address) -> str | None:
    """What only an IPv6 address can carry: an interface scope, or a refused IPv4 inside it."""
    if ip.scope_id:
        return f"{address} is a scoped IPv6 address"
    embedded = _embedded_ipv4(ip)
    if embedded is None:
        return None
    problem = check_address(str(embedded))
    return None if problem is None else f"{address} embeds IPv4 {embedded}: {problem}"


def _range_problem(address: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """The range ``ip`` is in, if that is not globally routable."""
    for flag in ("unspecified", "loopback", "link_local", "multicast", "private", "reserved"):
        if getattr(ip, f"is_{flag}"):
            return f"{address} is {flag.replace('_', '-')}"
    for network in _BLOCKED_NETWORKS:
        if ip.version == network.version and ip in network:
            return f"{address} is in special-purpose network {network}"
    if not ip.is_global:
        return f"{address} is not globally routable"
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if any(ip in network for network in _NAT64_NETWORKS) or (int(ip) >> 32 == 0 and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)  # NAT64 or IPv4-compatible
    return None


def resolve(host: str, port: int) -> tuple[str, ...]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError:  # the name cannot be encoded for DNS: no retry makes it resolvable
        raise RefusedUrl(f"host name {host!r} cannot be encoded for DNS") from None
    except socket.gaierror as exc:
        raise UnresolvableHost(f"cannot resolve {host}: {exc}") from exc
    addresses: list[str] = []
    for family, _type, _proto, _canonname, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            raise RefusedUrl(f"{host} resolves to a non-IP address family {family!r}")
        address = str(sockaddr[0])
        if family == socket.AF_INET6 and len(sockaddr) >= 4 and sockaddr[3]:
            address = f"{address.split('%')[0]}%{sockaddr[3]}"  # keep the scope: refused later
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnresolvableHost(f"{host} resolves to no address")
    return tuple(addresses)


def pinned_pool(
    address: str,
    target: ParsedUrl,
    timeout: urllib3.Timeout,
    ca_certs: str | None = None,
) -> urllib3.HTTPConnectionPool:
    """A one-connection pool to the vetted ``address``: urllib3 resolves nothing, while SNI,
    certificate and hostname verification use the URL's hostname (set the Host header too)."""
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            address,
            target.port,
            timeout=timeout,
            retries=False,
            maxsize=1,
            cert_reqs="CERT_REQUIRED",
            ca_certs=ca_certs or default_ca_bundle(),
            server_hostname=target.host,
            assert_hostname=target.host,
        )
    return urllib3.HTTPConnectionPool(
        address, target.port, timeout=timeout, retries=False, maxsize=1
    )


def pinned_connection(
    address: str, target: ParsedUrl, connect_timeout: float, ca_certs: str | None = None
) -> HTTPConnection:
    """One connection to the vetted ``address``, verified as ``pinned_pool``'s are, for a caller
    that times the exchange itself (set the Host header too)."""
    if target.scheme == "https":
        return HTTPSConnection(
            address,
            target.port,
            timeout=connect_timeout,
            cert_reqs="CERT_REQUIRED",
            ca_certs=ca_certs or default_ca_bundle(),
            server_hostname=target.host,
            assert_hostname=target.host,
        )
    return HTTPConnection(address, target.port, timeout=connect_timeout)


def default_ca_bundle() -> str | None:
    try:
        import certifi
    except ImportError:  # pragma: no cover - depends on the deployment
        return None
    return certifi.where()
