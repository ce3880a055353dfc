"""Integration: a real local HTTP(S) server -> veo_relay.downloader -> VideoStore -> moto S3.

The video server is stdlib ``http.server`` in a thread on 127.0.0.1, reached as the trusted local
origin (as the simulator is under ``make run``). S3 is moto's ``mock_aws``.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import boto3
import pytest
from moto import mock_aws

from tests.helpers import wait_until
from veo_relay.downloader import (
    ContentEncodingError,
    DownloadError,
    DownloadPolicy,
    HttpStatusError,
    NotMp4Error,
    TooLargeError,
    TooManyRedirectsError,
    TruncatedDownloadError,
    UnsafeUrlError,
    open_video,
)
from veo_relay.tasks import StoredVideo
from veo_relay.video_store import SHA256_TAG, VideoStore

BUCKET = "veo-relay-videos-test"
MIB = 1024 * 1024
MP4_HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
MOOV = b"\x00\x00\x00\x08moov"
_PATTERN = bytes(range(256)) * 4096  # 1 MiB


def mp4_bytes(size: int) -> bytes:
    """A well-formed `size`-byte MP4: ftyp, an empty moov, an mdat to the last byte."""
    head = MP4_HEAD + MOOV + struct.pack(">I", size - len(MP4_HEAD) - len(MOOV)) + b"mdat"
    body = head + _PATTERN * (size // len(_PATTERN) + 1)
    return body[:size]


# ---------------------------------------------------------------------------- the video server


@dataclass
class VideoServer:
    """Routes (all GET):

    /video/<size>[?ct=<type>&cl=none&lie=<announced>]  MP4-ish body (cl=none: no Content-Length,
                                                        close-delimited; lie: announce more, then
                                                        close early)
    /html                                               text/html page
    /polyglot                                           video/mp4: an ftyp box, then an HTML page
    /gzip/<size>                                        an MP4, gzip-compressed (Content-Encoding)
    /trailing/<size>                                    an MP4, then a few bytes more
    /raw/<size>                                         video/mp4 without an ftyp box
    /hop/<n>/<size>                                     n redirects, then /video/<size>
    /to?u=<url>                                         302 to <url>
    /status/<code>                                      that status
    /stall/<seconds>                                    headers, then silence
    /gated/<size>                                       the first MiB, then the rest once
                                                        `release` is set
    """

    httpd: ThreadingHTTPServer
    thread: threading.Thread
    scheme: str = "http"
    host: str = "127.0.0.1"
    requests: list[tuple[str, str]] = field(default_factory=list)  # (path, Host header)
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.origin}{path}"


class _VideoHandler(BaseHTTPRequestHandler):
    """Serves VideoServer's routes: the first path segment names the route, the rest are its
    arguments."""

    protocol_version = "HTTP/1.0"  # a close-delimited body is possible without Content-Length
    holder: list[VideoServer]  # the server this handler class serves, once it is started

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        self.holder[0].requests.append((self.path, self.headers.get("Host", "")))
        parts = urlsplit(self.path)
        route, *args = parts.path.strip("/").split("/")
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        serve = _ROUTES.get(route)
        if serve is None:
            self._send(404, "text/plain", b"no route")
            return
        serve(self, args, query)

    def _route_video(self, args: list[str], query: dict[str, str]) -> None:
        self._video(int(args[0]), query)

    def _route_raw(self, args: list[str], query: dict[str, str]) -> None:
        self._send(200, "video/mp4", b"\x00" * int(args[0]))

    def _route_html(self, args: list[str], query: dict[str, str]) -> None:
        self._send(200, "text/html", MP4_HEAD + b"<html></html>")

    def _route_polyglot(self, args: list[str], query: dict[str, str]) -> None:
        self._send(200, "video/mp4", MP4_HEAD + b"<html><script>alert(1)</script></html>")

    def _route_trailing(self, args: list[str], query: dict[str, str]) -> None:
        self._send(200, "video/mp4", mp4_bytes(int(args[0])) + b"<html>")

    def _route_gzip(self, args: list[str], query: dict[str, str]) -> None:
        body = gzip.compress(mp4_bytes(int(args[0])))
        self._send(200, "video/mp4", body, {"Content-Encoding": "gzip"})

    def _route_hop(self, args: list[str], query: dict[str, str]) -> None:
        left, size = int(args[0]), args[1]
        # Alternate absolute and relative Locations.
        target = f"/hop/{left - 1}/{size}" if left > 1 else f"/video/{size}"
        location = self.holder[0].url(target) if left % 2 else target
        self._redirect(302 if left % 2 else 307, location)

    def _route_to(self, args: list[str], query: dict[str, str]) -> None:
        self._redirect(302, query["u"])

    def _route_status(self, args: list[str], query: dict[str, str]) -> None:
        self._send(int(args[0]), "text/plain", b"nope")

    def _route_gated(self, args: list[str], query: dict[str, str]) -> None:
        self._video(int(args[0]), query, gate=self.holder[0].release)

    def _route_stall(self, args: list[str], query: dict[str, str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(MP4_HEAD)
        self.wfile.flush()
        threading.Event().wait(float(args[0]))

    def _video(self, size: int, query: dict[str, str], gate: threading.Event | None = None) -> None:
        body = mp4_bytes(size)
        self.send_response(200)
        self.send_header("Content-Type", query.get("ct", "video/mp4"))
        if "lie" in query:
            self.send_header("Content-Length", query["lie"])
        elif query.get("cl") != "none":
            self.send_header("Content-Length", str(size))
        self.end_headers()
        view = memoryview(body)
        for start in range(0, size, MIB):
            self.wfile.write(view[start : start + MIB])
            if gate is not None and start == 0:
                self.wfile.flush()
                gate.wait(10)
        # Returning closes the connection: with a lying Content-Length that is a truncation.

    def _send(
        self, status: int, content_type: str, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, status: int, location: str) -> None:
        self.send_response(status)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()


_Route = Callable[[_VideoHandler, list[str], dict[str, str]], None]
_ROUTES: dict[str, _Route] = {
    "video": _VideoHandler._route_video,
    "raw": _VideoHandler._route_raw,
    "html": _VideoHandler._route_html,
    "polyglot": _VideoHandler._route_polyglot,
    "trailing": _VideoHandler._route_trailing,
    "gzip": _VideoHandler._route_gzip,
    "hop": _VideoHandler._route_hop,
    "to": _VideoHandler._route_to,
    "status": _VideoHandler._route_status,
    "gated": _VideoHandler._route_gated,
    "stall": _VideoHandler._route_stall,
}


def _handler(holder: list[VideoServer]) -> type[BaseHTTPRequestHandler]:
    """A handler class serving the VideoServer that `holder` will hold."""
    return type("Handler", (_VideoHandler,), {"holder": holder})


@pytest.fixture
def start_server() -> Iterator[Callable[..., VideoServer]]:
    """Factory of video servers on 127.0.0.1; every one is shut down after the test."""
    started: list[VideoServer] = []

    def start(ssl_context: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> VideoServer:
        holder: list[VideoServer] = []
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(holder))
        httpd.daemon_threads = True
        httpd.block_on_close = False
        # Clients hanging up early (refused downloads) are expected: no tracebacks on stderr.
        httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        if ssl_context is not None:
            httpd.socket = ssl_context.wrap_socket(httpd.socket, server_side=True)
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
        thread.daemon = True
        server = VideoServer(httpd, thread, scheme="https" if ssl_context else "http", host=host)
        holder.append(server)
        thread.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.httpd.shutdown()
        server.httpd.server_close()
        server.thread.join(timeout=5)


@pytest.fixture
def server(start_server: Callable[..., VideoServer]) -> VideoServer:
    return start_server()


def local_policy(server: VideoServer, **overrides: Any) -> DownloadPolicy:
    values: dict[str, Any] = {
        "allowed_origins": frozenset({"https://cdn.example.com"}),
        "trusted_local_origins": frozenset({server.origin}),
        "max_bytes": 64 * MIB,
        "connect_timeout": 2,
        "read_timeout": 5,
    }
    values.update(overrides)
    return DownloadPolicy(**values)


# ------------------------------------------------------------------------------------------ S3


@dataclass
class S3Env:
    client: Any
    store: VideoStore
    calls: list[str]

    def object_keys(self) -> list[str]:
        listing = self.client.list_objects_v2(Bucket=BUCKET)
        return [item["Key"] for item in listing.get("Contents", [])]

    def open_uploads(self) -> list[dict[str, Any]]:
        return self.client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Env]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        calls: list[str] = []

        def record(model: Any, **kwargs: Any) -> None:
            calls.append(model.name)

        client.meta.events.register("before-call.s3.*", record)
        yield S3Env(client, VideoStore(client, BUCKET), calls)


def copy(url: str, policy: DownloadPolicy, s3: S3Env, key: str = "videos/t1.mp4") -> StoredVideo:
    with open_video(url, policy) as stream:
        return s3.store.store(stream, key, {"task-id": "t1", "provider": "kie"})


def assert_nothing_stored(s3: S3Env) -> None:
    assert s3.open_uploads() == []
    assert s3.object_keys() == []


# --------------------------------------------------------------------------------- happy paths


@pytest.mark.parametrize("query", ["", "?cl=none"], ids=["size-announced", "size-unannounced"])
def test_large_video_is_streamed_multipart_with_size_hash_type_and_tag(
    server: VideoServer, s3: S3Env, query: str
) -> None:
    # Given a 20 MiB MP4 on the (trusted local) provider origin, its size announced or not
    size = 20 * MIB
    expected = mp4_bytes(size)
    # When it is copied into S3
    stored = copy(server.url(f"/video/{size}{query}"), local_policy(server), s3)
    # Then the result describes the object exactly
    sha256 = hashlib.sha256(expected).hexdigest()
    assert stored == StoredVideo(BUCKET, "videos/t1.mp4", size, sha256, "video/mp4")
    # And it went up as a 3-part multipart upload (8 + 8 + 4 MiB) with CRC32 checksums, then
    # the tag, and nothing more (a round trip weighs on a short video's copy time)
    upload = ["CreateMultipartUpload", *["UploadPart"] * 3, "CompleteMultipartUpload"]
    assert sorted(s3.calls) == sorted([*upload, "PutObjectTagging"])
    head = s3.client.head_object(Bucket=BUCKET, Key="videos/t1.mp4", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"]
    assert head["ContentLength"] == size
    assert head["ContentType"] == "video/mp4"
    assert head["Metadata"] == {"task-id": "t1", "provider": "kie"}
    assert head["ETag"].endswith('-3"')
    # And the bytes and the sha256 tag are right
    body = s3.client.get_object(Bucket=BUCKET, Key="videos/t1.mp4")["Body"].read()
    assert body == expected
    tags = s3.client.get_object_tagging(Bucket=BUCKET, Key="videos/t1.mp4")["TagSet"]
    assert tags == [{"Key": SHA256_TAG, "Value": sha256}]
    # And no upload is left open
    assert s3.open_uploads() == []


def test_announced_size_opens_the_upload_before_the_first_part_has_arrived(
    server: VideoServer, s3: S3Env
) -> None:
    # Given a 20 MiB MP4 whose server sends its first MiB, then waits
    url = server.url(f"/gated/{20 * MIB}")
    copying = threading.Thread(target=copy, args=(url, local_policy(server), s3), daemon=True)
    # When the copy starts
    copying.start()
    try:
        # Then the multipart upload is created while the first 8 MiB part is still arriving
        wait_until(
            lambda: "CreateMultipartUpload" in s3.calls,
            timeout=5,
            interval=0.01,
            what="CreateMultipartUpload while the first part was arriving",
        )
        assert "UploadPart" not in s3.calls
    finally:
        server.release.set()
        copying.join(timeout=10)
    # And once the rest arrives, the video is stored whole
    assert s3.client.head_object(Bucket=BUCKET, Key="videos/t1.mp4")["ContentLength"] == 20 * MIB
    assert s3.calls.count("UploadPart") == 3


def test_small_video_goes_up_in_a_single_put(server: VideoServer, s3: S3Env) -> None:
    # Given a 1 MiB MP4 served as application/octet-stream without Content-Length
    url = server.url(f"/video/{MIB}?ct=application/octet-stream&cl=none")
    # When copied / Then one PutObject, content type normalized to video/mp4
    stored = copy(url, local_policy(server), s3)
    assert stored.size_bytes == MIB
    assert stored.sha256 == hashlib.sha256(mp4_bytes(MIB)).hexdigest()
    assert stored.content_type == "video/mp4"
    assert s3.calls.count("PutObject") == 1
    assert "CreateMultipartUpload" not in s3.calls


def test_request_carries_the_url_host_header(server: VideoServer, s3: S3Env) -> None:
    # Given the server / When a video is fetched / Then the Host header is the URL's host:port
    copy(server.url("/video/1000"), local_policy(server), s3)
    assert server.requests == [("/video/1000", f"127.0.0.1:{server.port}")]


def test_redirect_chain_within_the_limit_is_followed(server: VideoServer, s3: S3Env) -> None:
    # Given 3 redirects (absolute and relative Locations) before the video
    size = 2 * MIB
    # When copied with max_redirects=3
    stored = copy(server.url(f"/hop/3/{size}"), local_policy(server, max_redirects=3), s3)
    # Then the video is stored and the server saw every hop
    assert stored.size_bytes == size
    assert [path for path, _ in server.requests] == [
        f"/hop/3/{size}",
        f"/hop/2/{size}",
        f"/hop/1/{size}",
        f"/video/{size}",
    ]


# ------------------------------------------------------------------------------------ refusals


def test_more_redirects_than_allowed_are_refused(server: VideoServer, s3: S3Env) -> None:
    # Given 4 redirects before the video, with max_redirects=3
    # When copying / Then it is refused after the 4th redirect, before following it
    with pytest.raises(TooManyRedirectsError) as exc:
        copy(server.url("/hop/4/1000"), local_policy(server, max_redirects=3), s3)
    assert exc.value.retryable is False
    assert len(server.requests) == 4
    assert_nothing_stored(s3)


@pytest.mark.parametrize("target", ["other-port", "localhost", "metadata", "http-cdn"])
def test_redirect_to_a_disallowed_origin_is_refused_without_contacting_it(
    start_server: Callable[..., VideoServer], s3: S3Env, target: str
) -> None:
    # Given the trusted provider origin redirecting elsewhere, e.g. another loopback service
    trusted, other = start_server(), start_server()
    location = {
        "other-port": other.url("/video/1000"),
        "localhost": f"http://localhost:{trusted.port}/video/1000",
        "metadata": "http://169.254.169.254/latest/meta-data/",
        "http-cdn": "http://cdn.example.com/video.mp4",
    }[target]
    url = trusted.url(f"/to?u={quote(location, safe='')}")
    # When copying / Then the redirect is refused and the other origin never sees a request
    with pytest.raises(UnsafeUrlError):
        copy(url, local_policy(trusted), s3)
    assert len(trusted.requests) == 1
    assert other.requests == []
    assert_nothing_stored(s3)


def test_announced_size_over_the_cap_is_refused_before_uploading(
    server: VideoServer, s3: S3Env
) -> None:
    # Given a 3 MiB video and a 2 MiB cap / When copying / Then TooLargeError, nothing sent to S3
    with pytest.raises(TooLargeError) as exc:
        copy(server.url(f"/video/{3 * MIB}"), local_policy(server, max_bytes=2 * MIB), s3)
    assert exc.value.retryable is False
    assert s3.calls == []
    assert_nothing_stored(s3)


def test_unannounced_size_over_the_cap_aborts_the_multipart_upload(
    server: VideoServer, s3: S3Env
) -> None:
    # Given a 20 MiB video without Content-Length and a 12 MiB cap
    url = server.url(f"/video/{20 * MIB}?cl=none")
    # When copying / Then TooLargeError mid-stream; the started upload is aborted
    with pytest.raises(TooLargeError):
        copy(url, local_policy(server, max_bytes=12 * MIB), s3)
    assert "CreateMultipartUpload" in s3.calls
    assert "AbortMultipartUpload" in s3.calls
    assert "CompleteMultipartUpload" not in s3.calls
    assert_nothing_stored(s3)


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/video/5000?ct=text/html", "content type"),
        ("/html", "content type"),
        ("/raw/5000", "ftyp"),
        ("/polyglot", "runs past the end"),
        (f"/trailing/{20 * MIB}", "trailing bytes"),
    ],
)
def test_not_an_mp4_is_refused(server: VideoServer, s3: S3Env, path: str, reason: str) -> None:
    # Given a body with a wrong content type or no ftyp box / When copying / Then NotMp4Error
    with pytest.raises(NotMp4Error, match=reason) as exc:
        copy(server.url(path), local_policy(server), s3)
    assert exc.value.retryable is False
    assert_nothing_stored(s3)


def test_a_compressed_body_is_refused_and_nothing_is_stored(server: VideoServer, s3: S3Env) -> None:
    # Given a 20 MiB MP4 sent gzip-compressed (a few KiB on the wire: inflated, a bomb would fit)
    # When copying / Then refused for good, before anything reaches S3
    with pytest.raises(ContentEncodingError, match="gzip") as exc:
        copy(server.url(f"/gzip/{20 * MIB}"), local_policy(server), s3)
    assert exc.value.retryable is False
    assert s3.calls == []
    assert_nothing_stored(s3)


def test_truncated_body_fails_and_leaves_no_object_or_upload(
    server: VideoServer, s3: S3Env
) -> None:
    # Given a server announcing 20 MiB that closes the connection after 12 MiB
    url = server.url(f"/video/{12 * MIB}?lie={20 * MIB}")
    # When copying / Then a retryable truncation error
    with pytest.raises(TruncatedDownloadError) as exc:
        copy(url, local_policy(server), s3)
    assert exc.value.retryable is True
    # And the multipart upload that had started was aborted: nothing remains
    assert "CreateMultipartUpload" in s3.calls
    assert "AbortMultipartUpload" in s3.calls
    assert_nothing_stored(s3)


def test_small_truncated_body_never_reaches_s3(server: VideoServer, s3: S3Env) -> None:
    # Given 100 KiB announced as 1 MiB / When copying / Then truncation and no PutObject
    with pytest.raises(TruncatedDownloadError):
        copy(server.url(f"/video/{100 * 1024}?lie={MIB}"), local_policy(server), s3)
    assert "PutObject" not in s3.calls
    assert_nothing_stored(s3)


def test_s3_failure_mid_upload_aborts_the_multipart_upload(server: VideoServer, s3: S3Env) -> None:
    # Given S3 failing the second part
    parts: list[int] = []

    def fail_second_part(params: dict[str, Any], **kwargs: Any) -> None:
        parts.append(params["PartNumber"])
        if params["PartNumber"] == 2:
            raise ConnectionError("simulated S3 outage")

    s3.client.meta.events.register("before-parameter-build.s3.UploadPart", fail_second_part)
    # When copying a 20 MiB video / Then the error surfaces and the upload is aborted
    with pytest.raises(ConnectionError, match="simulated"):
        copy(server.url(f"/video/{20 * MIB}"), local_policy(server), s3)
    assert "AbortMultipartUpload" in s3.calls
    assert_nothing_stored(s3)


@pytest.mark.parametrize(("status", "retryable"), [(404, False), (403, False), (503, True)])
def test_error_status_from_the_server(
    server: VideoServer, s3: S3Env, status: int, retryable: bool
) -> None:
    with pytest.raises(HttpStatusError) as exc:
        copy(server.url(f"/status/{status}"), local_policy(server), s3)
    assert (exc.value.status, exc.value.retryable) == (status, retryable)
    assert_nothing_stored(s3)


def test_read_timeout_is_retryable(server: VideoServer, s3: S3Env) -> None:
    # Given a server that stalls after the first bytes / When copying with a 0.3 s read timeout
    with pytest.raises(DownloadError, match="timed out") as exc:
        copy(server.url("/stall/1.5"), local_policy(server, read_timeout=0.3), s3)
    # Then a retryable error
    assert exc.value.retryable is True
    assert_nothing_stored(s3)


def test_connection_refused_is_retryable(s3: S3Env) -> None:
    # Given a trusted local origin where nothing listens
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    origin = f"http://127.0.0.1:{port}"
    policy = DownloadPolicy(
        allowed_origins=frozenset(), trusted_local_origins=frozenset({origin}), max_bytes=MIB
    )
    # When copying / Then a retryable DownloadError
    with pytest.raises(DownloadError, match="cannot connect") as exc:
        copy(f"{origin}/video/1000", policy, s3)
    assert exc.value.retryable is True


# ------------------------------------------------------------------- create-only / presign


@pytest.mark.parametrize("size", [5000, 20 * MIB], ids=["single-put", "multipart"])
def test_storing_again_keeps_the_video_stored_first(
    server: VideoServer, s3: S3Env, size: int
) -> None:
    # Given a video stored at the key by an earlier attempt
    first = copy(server.url(f"/video/{size}"), local_policy(server), s3)
    s3.calls.clear()
    # When another attempt copies a different video to the same key
    second = copy(server.url(f"/video/{size + 1000}"), local_policy(server), s3)
    # Then S3 refused the write (create-only) and the first video is the stored one, untouched
    assert second == first
    body = s3.client.get_object(Bucket=BUCKET, Key="videos/t1.mp4")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == first.sha256
    assert "PutObjectTagging" not in s3.calls
    # And nothing was left open by the refused attempt
    assert s3.open_uploads() == []


@pytest.mark.parametrize(
    "tags", [[], [{"Key": "other", "Value": "x"}], [{"Key": SHA256_TAG, "Value": "zz"}]]
)
def test_an_untagged_leftover_is_hashed_tagged_and_taken(
    server: VideoServer, s3: S3Env, tags: list[dict[str, str]]
) -> None:
    # Given an object left by an attempt that stopped before tagging it (or with a bad tag)
    leftover = mp4_bytes(100)
    s3.client.put_object(Bucket=BUCKET, Key="videos/t1.mp4", Body=leftover)
    if tags:
        s3.client.put_object_tagging(Bucket=BUCKET, Key="videos/t1.mp4", Tagging={"TagSet": tags})
    # When the copy is redone
    stored = copy(server.url("/video/5000"), local_policy(server), s3)
    # Then the leftover is the stored video, described by its own bytes, and now tagged
    sha256 = hashlib.sha256(leftover).hexdigest()
    assert (stored.size_bytes, stored.sha256) == (len(leftover), sha256)
    tagging = s3.client.get_object_tagging(Bucket=BUCKET, Key="videos/t1.mp4")["TagSet"]
    assert {"Key": SHA256_TAG, "Value": sha256} in tagging


def test_a_manifest_is_written_once(s3: S3Env) -> None:
    # Given a manifest written / When it is written again / Then S3 refused the second write
    assert s3.store.put_document("videos/t1.json", b"{}", "application/json", {}) is True
    assert s3.store.put_document("videos/t1.json", b"[]", "application/json", {}) is False
    body = s3.client.get_object(Bucket=BUCKET, Key="videos/t1.json")["Body"].read()
    assert body == b"{}"


def test_presigned_url_points_at_the_object(s3: S3Env) -> None:
    url = s3.store.presigned_url("videos/t1.mp4", expires_in=600)
    parts = urlsplit(url)
    assert BUCKET in parts.netloc + parts.path
    assert parts.path.endswith("/videos/t1.mp4")
    assert "Signature" in parts.query
    with pytest.raises(ValueError):
        s3.store.presigned_url("videos/t1.mp4", expires_in=0)


# ---------------------------------------------------------------- HTTPS: connect to vetted IP


@dataclass
class Tls:
    ca_file: str
    server_context: ssl.SSLContext
    sni: list[str | None] = field(default_factory=list)


@pytest.fixture(scope="module")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    """A test CA and a certificate for video.test signed by it: (ca, cert, key) PEM paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "veo-relay test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "video.test")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("video.test")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    paths = (directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    paths[0].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(paths[0]), str(paths[1]), str(paths[2])


@pytest.fixture
def tls(tls_material: tuple[str, str, str]) -> Tls:
    ca_file, cert_file, key_file = tls_material
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    result = Tls(ca_file=ca_file, server_context=context)

    def record_sni(sock: Any, server_name: str | None, ctx: Any) -> None:
        result.sni.append(server_name)

    context.sni_callback = record_sni
    return result


@dataclass
class FakeDns:
    """Answers for the test's names; everything else goes to the real resolver."""

    answers: dict[str, list[str]]
    queries: list[str] = field(default_factory=list)


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    real = socket.getaddrinfo
    fake = FakeDns(answers={})

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in fake.answers:
            fake.queries.append(host)
            # Rebinding: the first answer is loopback, later ones point elsewhere.
            answer = fake.answers[host][0 if fake.queries.count(host) == 1 else -1]
            return real(answer, port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return fake


def test_https_connects_to_the_vetted_ip_with_sni_and_cert_check_for_the_hostname(
    start_server: Callable[..., VideoServer], tls: Tls, fake_dns: FakeDns, s3: S3Env
) -> None:
    # Given video.test resolving first to 127.0.0.1 and afterwards to 10.255.255.1 (rebinding)
    fake_dns.answers["video.test"] = ["127.0.0.1", "10.255.255.1"]
    server = start_server(ssl_context=tls.server_context, host="video.test")
    policy = local_policy(server, ca_certs=tls.ca_file)
    # When copying over https
    stored = copy(server.url(f"/video/{MIB}"), policy, s3)
    # Then it is stored; DNS was asked once and the connection went to the vetted address,
    # with SNI and Host naming video.test and its certificate verified against that name
    assert stored.size_bytes == MIB
    assert fake_dns.queries == ["video.test"]
    assert tls.sni == ["video.test"]
    assert server.requests == [(f"/video/{MIB}", f"video.test:{server.port}")]


def test_https_certificate_for_another_name_is_refused(
    start_server: Callable[..., VideoServer], tls: Tls, fake_dns: FakeDns, s3: S3Env
) -> None:
    # Given wrong.test resolving to a server whose certificate is for video.test
    fake_dns.answers["wrong.test"] = ["127.0.0.1"]
    server = start_server(ssl_context=tls.server_context, host="wrong.test")
    # When copying / Then a permanent TLS error, nothing requested, nothing stored
    with pytest.raises(DownloadError, match="TLS") as exc:
        copy(server.url("/video/1000"), local_policy(server, ca_certs=tls.ca_file), s3)
    assert exc.value.retryable is False
    assert tls.sni == ["wrong.test"]
    assert server.requests == []
    assert_nothing_stored(s3)


def test_https_with_an_untrusted_ca_is_refused(
    start_server: Callable[..., VideoServer], tls: Tls, fake_dns: FakeDns, s3: S3Env
) -> None:
    # Given the right name but the default CA bundle (which does not know the test CA)
    fake_dns.answers["video.test"] = ["127.0.0.1"]
    server = start_server(ssl_context=tls.server_context, host="video.test")
    # When copying / Then a permanent TLS error
    with pytest.raises(DownloadError, match="TLS") as exc:
        copy(server.url("/video/1000"), local_policy(server), s3)
    assert exc.value.retryable is False
    assert server.requests == []


def test_https_public_name_resolving_to_loopback_is_refused(
    start_server: Callable[..., VideoServer], tls: Tls, fake_dns: FakeDns, s3: S3Env
) -> None:
    # Given an allow-listed (not trusted-local) https origin whose name resolves to loopback
    fake_dns.answers["video.test"] = ["127.0.0.1"]
    server = start_server(ssl_context=tls.server_context, host="video.test")
    policy = DownloadPolicy(
        allowed_origins=frozenset({server.origin}), max_bytes=MIB, ca_certs=tls.ca_file
    )
    # When copying / Then refused by the address check, before any TLS handshake
    with pytest.raises(UnsafeUrlError, match="loopback"):
        copy(server.url("/video/1000"), policy, s3)
    assert tls.sni == []
    assert server.requests == []
