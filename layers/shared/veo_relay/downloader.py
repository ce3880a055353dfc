"""Safe, streaming download of an MP4 from a URL that came from outside (a provider's result URL).

Defences (OWASP SSRF cheat sheet; reference doc sections 1 and 7):

* https only (plain http only for an explicitly trusted local origin, i.e. the simulator);
  no userinfo; only allow-listed origins (scheme, host and port);
* the host is resolved here and every resolved address must be globally routable; the connection
  then goes to a vetted address (``vetted_connect``: DNS rebinding cannot swap it, the next one
  is tried only when one cannot be reached) while SNI, certificate and hostname verification and
  the Host header still use the URL's hostname;
* redirects are never followed automatically: at most ``max_redirects`` hops, each re-vetted; a
  malformed URL, given or in a Location, is an UnsafeUrlError like any other refused URL;
* connect and read timeouts are always set, and every wait also ends at the copy's deadline and
  when the server sends under the throughput floor (``download_pace``: a trickle ends too);
* a byte cap is enforced on the announced and on the received size; the body must be an MP4:
  an MP4 content type, no content coding (raw bytes only: no decompression bomb) and top-level
  boxes that chain exactly from an ``ftyp`` box to the last byte (``mp4_boxes``);
* the body is streamed in bounded chunks (constant memory) while counting and hashing it.

urllib3 is used directly (not ``requests``) so that no proxy or netrc settings from the
environment apply and so that the pool can be pointed at the vetted IP address.
"""

from __future__ import annotations

import contextlib
import hashlib
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    InvalidHeader,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.util.ssl_match_hostname import CertificateError as UrllibCertificateError

from veo_relay.deadlines import Deadline
from veo_relay.download_pace import Limit, Pace, ThroughputFloor
from veo_relay.mp4_boxes import BoxChain, BoxStructureError, CutShort
from veo_relay.safe_urls import (
    ParsedUrl,
    RefusedUrl,
    UnresolvableHost,
    check_address,
    parse_url,
    pinned_pool,
    resolve_location,
)
from veo_relay.vetted_connect import NoTimeLeft, VettedHost, no_exemption, vet_host

__all__ = [
    "ContentEncodingError",
    "DeadlineError",
    "DownloadError",
    "DownloadPolicy",
    "HttpStatusError",
    "NotMp4Error",
    "ThroughputFloor",
    "TooLargeError",
    "TooManyRedirectsError",
    "TooSlowError",
    "TruncatedDownloadError",
    "UnsafeUrlError",
    "VideoStream",
    "check_address",
    "open_video",
]

_CHUNK_SIZE = 256 * 1024
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_RETRYABLE_STATUSES = frozenset({408, 425, 429})
# video/mp4 is what a well-behaved server sends. application/octet-stream is accepted too because
# CDNs and object stores (S3/GCS signed URLs, many resellers' buckets) often serve uploaded files
# with the generic type; the box structure (mp4_boxes) is what really identifies an MP4.
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


class ContentEncodingError(DownloadError):
    """The body came with a content coding (gzip, br, ...): only raw bytes are taken."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class TooSlowError(DownloadError):
    """The server sent under the throughput floor (a trickle); another attempt may fare better."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


class DeadlineError(DownloadError):
    """The copy's deadline came before the download ended; ended in time for the cleanup."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


# --------------------------------------------------------------------------------------- policy


def _parse_url(url: str) -> ParsedUrl:
    try:
        return parse_url(url)
    except RefusedUrl as exc:
        raise UnsafeUrlError(str(exc)) from None


def _normalize_origins(origins: Iterable[str]) -> frozenset[str]:
    if isinstance(origins, str):
        raise TypeError("origins must be a collection of strings, not a single string")
    return frozenset(_parse_url(origin).origin for origin in origins)


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
    throughput_floor: ThroughputFloor | None = None  # None: only the timeouts and the deadline
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
    host: VettedHost  # connect only through it

    @property
    def parsed(self) -> ParsedUrl:
        return self.host.target

    @property
    def addresses(self) -> tuple[str, ...]:
        return self.host.addresses


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
        host = vet_host(parsed, exempt=_any_address if trusted_local else no_exemption)
    except RefusedUrl as exc:
        raise UnsafeUrlError(str(exc)) from None
    except UnresolvableHost as exc:
        raise DownloadError(str(exc), retryable=True) from exc
    return _Target(url=url, host=host)


def _any_address(address: str) -> bool:
    """A trusted local origin (the simulator) may be on loopback or a private network."""
    return True


# ---------------------------------------------------------------------------------- transport


def _send(
    target: _Target,
    policy: DownloadPolicy,
    cleanup: contextlib.ExitStack,
    deadline: Deadline | None = None,
) -> urllib3.BaseHTTPResponse:
    """GET ``target`` on the first of its vetted addresses that can be reached (see
    ``pinned_pool``), within ``deadline``. Resources go onto ``cleanup``."""
    parsed = target.parsed
    headers = {
        "Host": parsed.host_header,
        "User-Agent": _USER_AGENT,
        "Accept": "video/mp4, application/octet-stream;q=0.9",
        "Accept-Encoding": "identity",
    }

    def get(address: str, seconds_left: float | None) -> urllib3.BaseHTTPResponse:
        timeout = _timeout(policy, seconds_left)
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
                decode_content=False,  # raw bytes: a content coding is refused, never decoded
                release_conn=False,
                assert_same_host=False,
            )
        except BaseException:
            pool.close()
            raise
        cleanup.callback(pool.close)
        cleanup.callback(response.close)
        return response

    try:
        return target.host.connect(get, deadline)
    except NoTimeLeft as exc:
        message = f"the copy's deadline came before a response from {_redact(target.url)}"
        raise DeadlineError(message) from exc
    except ProtocolError as exc:  # the connection dropped before a response arrived
        message = f"connection to {_redact(target.url)} dropped before a response: {exc}"
        raise DownloadError(message, retryable=True) from exc
    except Exception as exc:
        error = _translate(exc, target.url)
        if error is exc:
            raise
        raise error from exc


def _timeout(policy: DownloadPolicy, seconds_left: float | None) -> urllib3.Timeout:
    """The policy's timeouts, cut to the time left before the deadline."""
    connect, read = policy.connect_timeout, policy.read_timeout
    if seconds_left is not None:
        connect, read = min(connect, seconds_left), min(read, seconds_left)
    return urllib3.Timeout(connect=connect, read=read)


def _translate(exc: Exception, url: str) -> Exception:
    """Map transport exceptions to DownloadError (others are returned unchanged)."""
    where = _redact(url)
    if isinstance(exc, DownloadError):
        return exc
    if isinstance(exc, BoxStructureError):
        return NotMp4Error(f"not an MP4: {exc}")
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
    size multipart parts). Bytes handed out are counted and hashed; the size cap, the
    Content-Length, the pace (``download_pace``) and the MP4 box structure are enforced as bytes
    arrive, so a bad body fails its last read at the latest, before the upload completes. Errors
    are sticky.
    """

    def __init__(
        self,
        response: urllib3.BaseHTTPResponse,
        *,
        url: str,
        content_type: str,
        content_length: int | None,
        max_bytes: int,
        pace: Pace,
    ) -> None:
        self.url = url
        self.content_type = content_type
        self.content_length = content_length
        self._response = response
        self._pace = pace
        self._boxes = BoxChain(content_length)
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

    def _finish_boxes(self) -> None:
        try:
            self._boxes.finish()
        except CutShort as exc:
            if self.content_length is not None:
                raise  # all the announced bytes came: the file itself is cut
            # No size was announced, so a connection cut off looks just like this: asked again.
            raise TruncatedDownloadError(f"body ended inside a box: {exc}") from exc

    def _next_chunk(self) -> bytes:
        if self._error is not None:
            raise self._error
        if self._eof:
            return b""
        try:
            chunk = self._receive()
            if not chunk:
                self._eof = True
                if self.content_length is not None and self._received != self.content_length:
                    raise TruncatedDownloadError(
                        f"body ended after {self._received} of {self.content_length} bytes"
                    )
                self._finish_boxes()
                return b""
            self._received += len(chunk)
            if self._received > self._max_bytes:
                raise TooLargeError(f"body exceeds the {self._max_bytes}-byte limit")
            self._boxes.feed(chunk)
            return chunk
        except Exception as exc:
            error = _translate(exc, self.url)
            if isinstance(error, DownloadError):
                self._error = error
            if error is exc:
                raise
            raise error from exc

    def _receive(self) -> bytes:
        """What the server sent next (b"" at the end), as soon as it came: a wait is bounded by
        the pace's earliest limit, which ends the download when it is reached."""
        wait, limit = self._pace.next_wait()
        if wait <= 0:
            raise self._limit_reached(limit, 0.0)
        sock = getattr(self._response.connection, "sock", None)
        if sock is not None:  # http.client reads through this socket; its timeout bounds a read
            sock.settimeout(wait)
        started = time.monotonic()
        try:
            chunk = self._response.read1(_CHUNK_SIZE, decode_content=False)
        except ReadTimeoutError:
            if limit is Limit.READ_TIMEOUT:
                raise
            raise self._limit_reached(limit, time.monotonic() - started) from None
        too_slow = self._pace.record(len(chunk), time.monotonic() - started)
        if too_slow is not None:
            raise TooSlowError(f"download from {_redact(self.url)} too slow: {too_slow}")
        return chunk

    def _limit_reached(self, limit: Limit, waited: float) -> DownloadError:
        where = _redact(self.url)
        if limit is Limit.THROUGHPUT:
            return TooSlowError(
                f"download from {where} too slow: {self._pace.too_slow_after(waited)}"
            )
        return DeadlineError(
            f"download from {where} not finished by the copy's deadline "
            f"({self._received} bytes received)"
        )

    def _check_mp4_start(self) -> None:
        """Receive the first box header (kept for the reader): a body that does not start like
        an MP4 is refused before anything is uploaded."""
        head = b""
        while len(head) < 8:
            chunk = self._next_chunk()
            if not chunk:
                break
            head += chunk
        self._pending, self._offset = head, 0


# ---------------------------------------------------------------------------------------- API


@contextlib.contextmanager
def open_video(
    url: str, policy: DownloadPolicy, deadline: Deadline | None = None
) -> Iterator[VideoStream]:
    """Open ``url`` under ``policy`` and yield a VideoStream positioned at the first byte; the
    whole download (redirects included) ends by ``deadline``.

    Raises DownloadError (or a subclass) before yielding when the URL, a redirect, the status,
    the content type or coding, the announced size or the first box is refused; and from
    ``read`` when the body is too large, truncated, too slow, not done by the deadline, not an
    MP4 after all, or the connection fails.
    """
    with contextlib.ExitStack() as cleanup:
        response, final_url = _follow_redirects(url, policy, cleanup, deadline)
        if response.status != 200:
            raise HttpStatusError(response.status, final_url)
        content_type = _media_type(response.headers.get("Content-Type"))
        if content_type not in _ACCEPTED_CONTENT_TYPES:
            raise NotMp4Error(f"content type {content_type or '(none)'!r} is not an MP4 type")
        _check_identity(response.headers.get("Content-Encoding"))
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
            pace=Pace(policy.read_timeout, deadline, policy.throughput_floor),
        )
        cleanup.callback(stream.close)
        stream._check_mp4_start()
        yield stream


def _follow_redirects(
    url: str,
    policy: DownloadPolicy,
    cleanup: contextlib.ExitStack,
    deadline: Deadline | None,
) -> tuple[urllib3.BaseHTTPResponse, str]:
    current = url
    redirects = 0
    while True:
        target = _vet(current, policy)
        hop = contextlib.ExitStack()
        try:
            response = _send(target, policy, hop, deadline)
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
        current = _redirect_target(current, location)


def _redirect_target(current: str, location: str) -> str:
    """The URL a Location names, relative to ``current``; vetted like any other URL after."""
    try:
        return resolve_location(current, location)
    except RefusedUrl as exc:
        raise UnsafeUrlError(f"redirect from {_redact(current)} refused: {exc}") from None


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def _check_identity(content_encoding: str | None) -> None:
    """Only raw bytes are taken (an absent, empty or "identity" coding): a compressed body is
    refused, never inflated, so that what the cap counts is what gets stored."""
    if content_encoding is None:
        return
    codings = content_encoding.lower().split(",")
    if any(coding.strip() not in ("", "identity") for coding in codings):
        raise ContentEncodingError(
            f"Content-Encoding {content_encoding[:40]!r} is refused: only identity is accepted"
        )


def _content_length(headers: urllib3.HTTPHeaderDict) -> int | None:
    raw = headers.get("Content-Length")
    if raw is None:
        return None
    values = {v.strip() for v in raw.split(",")}
    if len(values) != 1 or not next(iter(values)).isdigit():
        raise DownloadError(f"invalid Content-Length {raw!r}", retryable=False)
    return int(values.pop())


class ProviderVideos:
    """Where the copy reads a provider's video from (veo_relay.ports.VideoSource): its URL,
    under that provider's policy."""

    def __init__(self, policy_for: Callable[[str], DownloadPolicy]) -> None:
        self._policy_for = policy_for

    def open(
        self, url: str, provider: str, deadline: Deadline | None
    ) -> contextlib.AbstractContextManager[VideoStream]:
        return open_video(url, self._policy_for(provider), deadline)
