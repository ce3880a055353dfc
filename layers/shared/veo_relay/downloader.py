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

from veo_relay.safe_urls import (
    ParsedUrl,
    RefusedUrl,
    UnresolvableHost,
    check_address,
    parse_url,
    pinned_pool,
    resolve,
)

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

_CHUNK_SIZE = 256 * 1024
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_RETRYABLE_STATUSES = frozenset({408, 425, 429})
# video/mp4 is what a well-behaved server sends. application/octet-stream is accepted too because
# CDNs and object stores (S3/GCS signed URLs, many resellers' buckets) often serve uploaded files
# with the generic type; the ``ftyp`` check on the first bytes is what really identifies an MP4.
_ACCEPTED_CONTENT_TYPES = frozenset({"video/mp4", "application/octet-stream"})
_USER_AGENT = "veo-relay-downloader/1"


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


def origin_of(url: str) -> str:
    """``scheme://host:port`` of ``url``, lower-cased with the default port filled in."""
    return _parse_url(url).origin


def _parse_url(url: str) -> ParsedUrl:
    try:
        return parse_url(url)
    except RefusedUrl as exc:
        raise UnsafeUrlError(str(exc)) from None


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


@dataclass(frozen=True)
class _Target:
    url: str
    parsed: ParsedUrl
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
    try:
        addresses = resolve(parsed.host, parsed.port)
    except RefusedUrl as exc:
        raise UnsafeUrlError(str(exc)) from None
    except UnresolvableHost as exc:
        raise DownloadError(str(exc), retryable=True) from exc
    if not trusted_local:
        for address in addresses:
            problem = check_address(address)
            if problem is not None:
                raise UnsafeUrlError(f"{parsed.host} resolves to a forbidden address: {problem}")
    return _Target(url=url, parsed=parsed, addresses=addresses, trusted_local=trusted_local)


# ---------------------------------------------------------------------------------- transport


def _send(
    target: _Target, policy: DownloadPolicy, cleanup: contextlib.ExitStack
) -> urllib3.BaseHTTPResponse:
    """GET ``target`` on one of its vetted addresses (see ``pinned_pool``). Resources go onto
    ``cleanup``."""
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
        pool = pinned_pool(address, parsed, timeout, policy.ca_certs)
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
        # Views of the received chunks, joined once: a part is copied a single time.
        pieces: list[memoryview] = []
        count = 0
        while want is None or count < want:
            if self._offset >= len(self._pending):
                self._pending, self._offset = self._next_chunk(), 0
                if not self._pending:
                    break
            end = len(self._pending) if want is None else self._offset + want - count
            piece = memoryview(self._pending)[self._offset : end]
            pieces.append(piece)
            count += len(piece)
            self._offset += len(piece)
        data = b"".join(pieces)
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
