"""The stdlib HTTP layer: turns requests into `SimRequest`s, writes JSON answers and streams videos.

Protocol logic lives elsewhere; this module knows only three hooks (`AppHooks`).
"""

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar
from urllib.parse import parse_qsl, unquote, urlsplit

from offline.servers import LocalHTTPServer

from .mp4 import iter_mp4
from .tasks import VideoFile
from .web import SimRequest, SimResponse

log = logging.getLogger(__name__)

FILES_PREFIX = "/files/"
INTROSPECTION_PATH = "/_sim/tasks"
BALANCE_PATH = "/_sim/balance"  # POST {"balance": N}: what the balance route answers from now on


@dataclass(frozen=True)
class AppHooks:
    handle: Callable[[SimRequest], SimResponse]  # every provider API request
    find_video: Callable[[str], VideoFile | None]  # a downloadable video by file name
    introspect: Callable[[], dict[str, Any]]  # the body of GET /_sim/tasks
    control_balance: Callable[[bytes], tuple[int, dict[str, Any]]]  # POST /_sim/balance


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real APIs and CDNs
    hooks: ClassVar[AppHooks]

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def do_POST(self) -> None:
        self._serve("POST")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _serve(self, method: str) -> None:
        url = urlsplit(self.path)
        body = self._read_body()
        if method in ("GET", "HEAD") and url.path.startswith(FILES_PREFIX):
            self._send_video(unquote(url.path.removeprefix(FILES_PREFIX)), method == "HEAD")
            return
        if method == "GET" and url.path == INTROSPECTION_PATH:
            self._send_json(200, self.hooks.introspect())
            return
        if method == "POST" and url.path == BALANCE_PATH:
            self._send_json(*self.hooks.control_balance(body))
            return
        request = SimRequest(
            method=method,
            path=url.path,
            query=dict(parse_qsl(url.query)),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
        )
        response = self.hooks.handle(request)
        self._send_json(response.status, response.body, head_only=method == "HEAD")

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send_json(self, status: int, body: dict[str, Any], head_only: bool = False) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if not head_only:
            self.wfile.write(payload)

    def _send_video(self, name: str, head_only: bool) -> None:
        video = self.hooks.find_video(name)
        if video is None:
            self._send_json(404, {"error": "file not found"}, head_only)
            return
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(video.size))
        self.end_headers()
        if head_only:
            return
        try:
            for chunk in iter_mp4(video.size, video.seed, resolution=video.resolution):
                self.wfile.write(chunk)
        except ConnectionError:  # the client hung up mid-download; nothing left to do
            self.close_connection = True


def make_server(host: str, port: int, hooks: AppHooks) -> LocalHTTPServer:
    handler = type("SimulatorHandler", (_Handler,), {"hooks": hooks})
    # Daemon threads (LocalHTTPServer's): in-flight downloads must not block stop().
    return LocalHTTPServer((host, port), handler)
