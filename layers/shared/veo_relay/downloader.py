"""Safe, streaming download of an MP4 from a URL that came from outside (a provider's result URL).

Defences (OWASP SSRF cheat sheet; reference doc sections 1 and 7):

* https only (plain http only for an explicitly trusted local origin, i.e. the simulator);
  no userinfo; only allow-listed origins (scheme, host and port);
* the host is resolved here and every resolved address must be globally routable; the connection
  then goes to the vetted address (DNS rebinding cannot swap it) while SNI, certificate and
  hostname verification and the Host header still use the URL's hostname;
* redirects are never followed automatically: at most ``max_redirects`` hops, each re-vetted;
* connect and read timeouts are always set; a byte cap is enforced on the announced and on the
  received size; the body must be an MP4 (content type and leading ``ftyp`` box);
* the body is streamed in bounded chunks (constant memory) while counting and hashing it.

urllib3 is used directly (not ``requests``) so that no proxy or netrc settings from the
environment apply and so that the pool can be pointed at the vetted IP address.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import re
import socket
import ssl
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    DecodeError,
    HTTPError,
    InvalidHeader,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.util.ssl_match_hostname import CertificateError as UrllibCertificateError

__all__ = [
    "DownloadError",
    "DownloadPolicy",
    "HttpStatusError",
    "NotMp4Error",
    "TooLargeError",
    "TooManyRedirectsError",
    "TruncatedDownloadError",
    "UnsafeUrlError",
    "VideoStream",
    "check_address",
    "open_video",
    "origin_of",
]

_DEFAULT_PORTS = {"https": 443, "http": 80}
_CHUNK_SIZE = 256 * 1024
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_RETRYABLE_STATUSES = frozenset({408, 425, 429})
# video/mp4 is what a well-behaved server sends. application/octet-stream is accepted too because
# CDNs and object stores (S3/GCS signed URLs, many resellers' buckets) often serve uploaded files
# with the generic type; the ``ftyp`` check on the first bytes is what really identifies an MP4.
_ACCEPTED_CONTENT_TYPES = frozenset({"video/mp4", "application/octet-stream"})
_USER_AGENT = "veo-relay-downloader/1"

_NETLOC_RE = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^\[\]:]+)(?::(?P<port>[0-9]{1,5}))?")
_HOST_LABEL_RE = re.compile(r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?")
# WHATWG URL: a host whose last label is numeric (decimal, or 0x-hex) is parsed as IPv4, in any
# of the legacy forms (2130706433, 0x7f.1, 0177.0.0.1, 127.1). Only canonical dotted quads pass.
_NUMERIC_LABEL_RE = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)")

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


# --------------------------------------------------------------------------------------- errors


class DownloadError(Exception):
    """The video could not be downloaded. ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status


class UnsafeUrlError(DownloadError):
    """The URL was refused before any connection (scheme, userinfo, origin, address)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class TooManyRedirectsError(DownloadError):
    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class HttpStatusError(DownloadError):
    """The final response was not 200. Retryable for 5xx, 408, 425 and 429."""

    def __init__(self, status: int, url: str) -> None:
        retryable = status >= 500 or status in _RETRYABLE_STATUSES
        message = f"unexpected HTTP status {status} from {_redact(url)}"
        super().__init__(message, retryable=retryable, status=status)


class NotMp4Error(DownloadError):
    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class TooLargeError(DownloadError):
    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class TruncatedDownloadError(DownloadError):
    """The body ended before Content-Length bytes arrived (connection broken)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


# --------------------------------------------------------------------------------------- policy


@dataclass(frozen=True)
class _ParsedUrl:
    scheme: str
    host: str  # lower-case hostname, or bare IP literal (IPv6 without brackets)
    port: int
    path: str  # path + query, never empty; the fragment is dropped

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self._host_for_url}:{self.port}"

    @property
    def host_header(self) -> str:
        if self.port == _DEFAULT_PORTS[self.scheme]:
            return self._host_for_url
        return f"{self._host_for_url}:{self.port}"

    @property
    def _host_for_url(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host


def _parse_url(url: str) -> _ParsedUrl:
    if not isinstance(url, str) or not url:
        raise UnsafeUrlError("empty or non-string URL")
    if len(url) > 8192:
        raise UnsafeUrlError("URL longer than 8192 characters")
    if not url.isascii():
        raise UnsafeUrlError("URL contains non-ASCII characters")
    if any(ch <= " " or ch == "\x7f" or ch == "\\" for ch in url):
        raise UnsafeUrlError("URL contains whitespace, control characters or backslashes")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise UnsafeUrlError(f"URL has no valid host[:port]: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise UnsafeUrlError(f"scheme {scheme or '(none)'!r} is not allowed")
    if "@" in parts.netloc:
        raise UnsafeUrlError("URL contains userinfo (credentials before '@')")
    match = _NETLOC_RE.fullmatch(parts.netloc)
    if match is None:
        raise UnsafeUrlError("URL has no valid host[:port]")
    host = _canonical_host(match.group("host"))
    port = int(match.group("port")) if match.group("port") else _DEFAULT_PORTS[scheme]
    if not 0 < port < 65536:
        raise UnsafeUrlError(f"port {port} is out of range")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return _ParsedUrl(scheme=scheme, host=host, port=port, path=path)


def _canonical_host(raw: str) -> str:
    if raw.startswith("["):
        try:
            return ipaddress.IPv6Address(raw[1:-1]).compressed
        except ValueError:
            raise UnsafeUrlError("invalid IPv6 literal host") from None
    host = raw.lower()
    labels = host.split(".")
    if not all(_HOST_LABEL_RE.fullmatch(label) for label in labels):
        raise UnsafeUrlError(f"invalid host name {host!r}")
    if _NUMERIC_LABEL_RE.fullmatch(labels[-1]):
        try:
            return str(ipaddress.IPv4Address(host))  # rejects 127.1, 0x7f.1, 017.0.0.1, 2130706433
        except ValueError:
            raise UnsafeUrlError(f"non-canonical numeric IPv4 host {host!r}") from None
    return host


def origin_of(url: str) -> str:
    """``scheme://host:port`` of ``url``, lower-cased with the default port filled in."""
    return _parse_url(url).origin


def _normalize_origins(origins: Iterable[str]) -> frozenset[str]:
    if isinstance(origins, str):
        raise TypeError("origins must be a collection of strings, not a single string")
    return frozenset(origin_of(origin) for origin in origins)


@dataclass(frozen=True, kw_only=True)
class DownloadPolicy:
    """What a download may touch. Origins may be given as URLs; they are normalized.

    ``trusted_local_origins`` may be plain http and resolve to loopback/private addresses: it is
    meant only for the local simulator (e.g. ``http://127.0.0.1:8701``).
    """

    allowed_origins: frozenset[str]
    trusted_local_origins: frozenset[str] = frozenset()
    max_bytes: int
    connect_timeout: float = 5
    read_timeout: float = 60
    max_redirects: int = 3
    ca_certs: str | None = None  # PEM bundle; None: certifi's bundle if installed, else the OS's

    def __post_init__(self) -> None:
        # An http origin in allowed_origins is harmless: plain http is refused unless trusted.
        object.__setattr__(self, "allowed_origins", _normalize_origins(self.allowed_origins))
        object.__setattr__(
            self, "trusted_local_origins", _normalize_origins(self.trusted_local_origins)
        )
        if self.max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ValueError("timeouts must be positive")
        if self.max_redirects < 0:
            raise ValueError("max_redirects must be >= 0")


# ------------------------------------------------------------------------------------- vetting


def check_address(address: str) -> str | None:
    """Why ``address`` (an IP string as getaddrinfo returns it) must not be contacted, or None."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"{address!r} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return f"{address} is a scoped IPv6 address"
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            problem = check_address(str(embedded))
            if problem is not None:
                return f"{address} embeds IPv4 {embedded}: {problem}"
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


@dataclass(frozen=True)
class _Target:
    url: str
    parsed: _ParsedUrl
    addresses: tuple[str, ...]  # vetted; connect only to these
    trusted_local: bool


def _vet(url: str, policy: DownloadPolicy) -> _Target:
    """All checks that happen before connecting; raises UnsafeUrlError with the reason."""
    parsed = _parse_url(url)
    origin = parsed.origin
    trusted_local = origin in policy.trusted_local_origins
    if parsed.scheme != "https" and not trusted_local:
        raise UnsafeUrlError(f"plain http is not allowed for {origin}")
    if not trusted_local and origin not in policy.allowed_origins:
        raise UnsafeUrlError(f"origin {origin} is not an allowed download origin")
    addresses = _resolve(parsed.host, parsed.port)
    if not trusted_local:
        for address in addresses:
            problem = check_address(address)
            if problem is not None:
                raise UnsafeUrlError(f"{parsed.host} resolves to a forbidden address: {problem}")
    return _Target(url=url, parsed=parsed, addresses=addresses, trusted_local=trusted_local)


def _resolve(host: str, port: int) -> tuple[str, ...]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DownloadError(f"cannot resolve {host}: {exc}", retryable=True) from exc
    addresses: list[str] = []
    for family, _type, _proto, _canonname, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            raise UnsafeUrlError(f"{host} resolves to a non-IP address family {family!r}")
        address = str(sockaddr[0])
        if family == socket.AF_INET6 and len(sockaddr) >= 4 and sockaddr[3]:
            address = f"{address.split('%')[0]}%{sockaddr[3]}"  # keep the scope: refused later
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise DownloadError(f"{host} resolves to no address", retryable=True)
    return tuple(addresses)


# ---------------------------------------------------------------------------------- transport


def _send(
    target: _Target, policy: DownloadPolicy, cleanup: contextlib.ExitStack
) -> urllib3.BaseHTTPResponse:
    """GET ``target`` on one of its vetted addresses. Resources go onto ``cleanup``.

    The pool's host is the IP address, so urllib3 connects there without resolving anything;
    SNI and certificate/hostname verification use the URL's hostname (server_hostname,
    assert_hostname) and the Host header is set explicitly.
    """
    parsed = target.parsed
    timeout = urllib3.Timeout(connect=policy.connect_timeout, read=policy.read_timeout)
    headers = {
        "Host": parsed.host_header,
        "User-Agent": _USER_AGENT,
        "Accept": "video/mp4, application/octet-stream;q=0.9",
        "Accept-Encoding": "identity",
    }
    last_error: Exception | None = None
    for address in target.addresses:
        pool: urllib3.HTTPConnectionPool
        if parsed.scheme == "https":
            pool = urllib3.HTTPSConnectionPool(
                address,
                parsed.port,
                timeout=timeout,
                retries=False,
                maxsize=1,
                cert_reqs="CERT_REQUIRED",
                ca_certs=policy.ca_certs or _default_ca_bundle(),
                server_hostname=parsed.host,
                assert_hostname=parsed.host,
            )
        else:
            pool = urllib3.HTTPConnectionPool(
                address, parsed.port, timeout=timeout, retries=False, maxsize=1
            )
        try:
            response = pool.urlopen(
                "GET",
                parsed.path,
                headers=headers,
                redirect=False,
                retries=False,
                timeout=timeout,
                preload_content=False,
                decode_content=True,
                release_conn=False,
                assert_same_host=False,
            )
        except ConnectTimeoutError as exc:  # includes NewConnectionError: try the next address
            pool.close()
            last_error = exc
            continue
        except ProtocolError as exc:  # the connection dropped before a response arrived
            pool.close()
            message = f"connection to {_redact(target.url)} dropped before a response: {exc}"
            raise DownloadError(message, retryable=True) from exc
        except Exception as exc:
            pool.close()
            error = _translate(exc, target.url)
            if error is exc:
                raise
            raise error from exc
        cleanup.callback(pool.close)
        cleanup.callback(response.close)
        return response
    assert last_error is not None
    raise _translate(last_error, target.url) from last_error


def _default_ca_bundle() -> str | None:
    try:
        import certifi
    except ImportError:  # pragma: no cover - depends on the deployment
        return None
    return certifi.where()


def _translate(exc: Exception, url: str) -> Exception:
    """Map transport exceptions to DownloadError (others are returned unchanged)."""
    where = _redact(url)
    if isinstance(exc, DownloadError):
        return exc
    if isinstance(exc, ConnectTimeoutError):
        return DownloadError(f"cannot connect to {where}: {exc}", retryable=True)
    if isinstance(exc, ReadTimeoutError):
        return DownloadError(f"read timed out from {where}", retryable=True)
    if isinstance(exc, SSLError):
        # A certificate that does not verify is a configuration problem or an attack.
        retryable = not _caused_by(exc, ssl.SSLCertVerificationError, UrllibCertificateError)
        return DownloadError(f"TLS error with {where}: {exc}", retryable=retryable)
    if isinstance(exc, ProtocolError):
        return TruncatedDownloadError(f"connection to {where} broken: {exc}")
    if isinstance(exc, InvalidHeader):  # e.g. conflicting Content-Length values
        return DownloadError(f"invalid response from {where}: {exc}", retryable=False)
    if isinstance(exc, DecodeError):
        return DownloadError(f"cannot decode body from {where}: {exc}", retryable=False)
    if isinstance(exc, (HTTPError, OSError)):
        return DownloadError(f"transport error with {where}: {exc}", retryable=True)
    return exc


def _caused_by(exc: BaseException, *types: type[BaseException], _depth: int = 0) -> bool:
    if isinstance(exc, types):
        return True
    if _depth > 5:
        return False
    related = [exc.__cause__, exc.__context__]
    related += [arg for arg in exc.args if isinstance(arg, BaseException)]
    return any(r is not None and _caused_by(r, *types, _depth=_depth + 1) for r in related)


def _redact(url: str) -> str:
    """The URL without its query (signed URLs carry credentials there)."""
    try:
        parsed = urlsplit(url)
    except ValueError:
        return "(unparsable URL)"
    return f"{parsed.scheme}://{parsed.netloc}{parsed.path}"


# ------------------------------------------------------------------------------------- stream


class VideoStream:
    """Read-only, non-seekable file-like over the response body.

    ``read(n)`` returns exactly ``n`` bytes unless the body ends (s3transfer relies on that to
    size multipart parts). Bytes handed out are counted and hashed; the size cap and the
    Content-Length are enforced as bytes arrive. Errors are sticky.
    """

    def __init__(
        self,
        response: urllib3.BaseHTTPResponse,
        *,
        url: str,
        content_type: str,
        content_length: int | None,
        max_bytes: int,
    ) -> None:
        self.url = url
        self.content_type = content_type
        self.content_length = content_length
        self._response = response
        self._chunks: Iterator[bytes] = response.stream(_CHUNK_SIZE, decode_content=True)
        self._max_bytes = max_bytes
        self._received = 0
        self._bytes_read = 0
        self._sha256 = hashlib.sha256()
        self._pending = b""  # the current chunk; bytes before _offset were handed out
        self._offset = 0
        self._eof = False
        self._error: DownloadError | None = None
        self._closed = False

    @property
    def bytes_read(self) -> int:
        return self._bytes_read

    def sha256_hex(self) -> str:
        return self._sha256.hexdigest()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._response.close()

    def read(self, size: int | None = -1) -> bytes:
        if self._closed:
            raise ValueError("read from a closed VideoStream")
        if self._error is not None:
            raise self._error
        want = None if size is None or size < 0 else size
        out = bytearray()
        while want is None or len(out) < want:
            if self._offset >= len(self._pending):
                self._pending, self._offset = self._next_chunk(), 0
                if not self._pending:
                    break
            end = len(self._pending) if want is None else self._offset + want - len(out)
            piece = memoryview(self._pending)[self._offset : end]
            out += piece
            self._offset += len(piece)
        data = bytes(out)
        self._bytes_read += len(data)
        self._sha256.update(data)
        return data

    def _next_chunk(self) -> bytes:
        if self._error is not None:
            raise self._error
        if self._eof:
            return b""
        try:
            chunk = next(self._chunks, b"")
            if not chunk:
                self._eof = True
                if self.content_length is not None and self._received != self.content_length:
                    raise TruncatedDownloadError(
                        f"body ended after {self._received} of {self.content_length} bytes"
                    )
                return b""
            self._received += len(chunk)
            if self._received > self._max_bytes:
                raise TooLargeError(f"body exceeds the {self._max_bytes}-byte limit")
            return chunk
        except Exception as exc:
            error = _translate(exc, self.url)
            if isinstance(error, DownloadError):
                self._error = error
            if error is exc:
                raise
            raise error from exc

    def _check_mp4_signature(self) -> None:
        """Peek at the first box (kept for the reader): bytes 4..8 must be ``ftyp``."""
        head = b""
        while len(head) < 8:
            chunk = self._next_chunk()
            if not chunk:
                break
            head += chunk
        self._pending, self._offset = head, 0
        if head[4:8] != b"ftyp":
            self._error = NotMp4Error("body does not start with an MP4 'ftyp' box")
            raise self._error


# ---------------------------------------------------------------------------------------- API


@contextlib.contextmanager
def open_video(url: str, policy: DownloadPolicy) -> Iterator[VideoStream]:
    """Open ``url`` under ``policy`` and yield a VideoStream positioned at the first byte.

    Raises DownloadError (or a subclass) before yielding when the URL, a redirect, the status,
    the content type, the announced size or the first box is refused; and from ``read`` when the
    body is too large, truncated or the connection fails.
    """
    with contextlib.ExitStack() as cleanup:
        response, final_url = _follow_redirects(url, policy, cleanup)
        if response.status != 200:
            raise HttpStatusError(response.status, final_url)
        content_type = _media_type(response.headers.get("Content-Type"))
        if content_type not in _ACCEPTED_CONTENT_TYPES:
            raise NotMp4Error(f"content type {content_type or '(none)'!r} is not an MP4 type")
        content_length = _content_length(response.headers)
        if content_length is not None and content_length > policy.max_bytes:
            raise TooLargeError(
                f"Content-Length {content_length} exceeds the {policy.max_bytes}-byte limit"
            )
        stream = VideoStream(
            response,
            url=final_url,
            content_type=content_type,
            content_length=content_length,
            max_bytes=policy.max_bytes,
        )
        cleanup.callback(stream.close)
        stream._check_mp4_signature()
        yield stream


def _follow_redirects(
    url: str, policy: DownloadPolicy, cleanup: contextlib.ExitStack
) -> tuple[urllib3.BaseHTTPResponse, str]:
    current = url
    redirects = 0
    while True:
        target = _vet(current, policy)
        hop = contextlib.ExitStack()
        try:
            response = _send(target, policy, hop)
            if response.status not in _REDIRECT_STATUSES:
                cleanup.enter_context(hop.pop_all())  # the caller now owns response and pool
                return response, current
            location = response.headers.get("Location")
            if not location:
                raise DownloadError(
                    f"redirect {response.status} without Location from {_redact(current)}",
                    retryable=False,
                    status=response.status,
                )
        finally:
            # On a redirect (or an error) this hop's response and pool are released now.
            hop.close()
        redirects += 1
        if redirects > policy.max_redirects:
            raise TooManyRedirectsError(f"more than {policy.max_redirects} redirects")
        current = urljoin(current, location.strip())


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def _content_length(headers: urllib3.HTTPHeaderDict) -> int | None:
    encoding = headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        return None  # the announced length is of the encoded body; the cap still applies
    raw = headers.get("Content-Length")
    if raw is None:
        return None
    values = {v.strip() for v in raw.split(",")}
    if len(values) != 1 or not next(iter(values)).isdigit():
        raise DownloadError(f"invalid Content-Length {raw!r}", retryable=False)
    return int(values.pop())
