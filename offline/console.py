"""The local console's static files (offline/console/), served by the offline HTTP API at /console/.

Only under `make run`: the template has no such route, so a deployed stack never serves it. The
page calls the same public API as any client. Only the files in offline/console/ with a known type
are served, looked up by name in that folder's listing (never a path joined from the request), so
nothing else on disk can be reached. `sim-tags.json` is the simulator's tag guide, for the form.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from offline.simulator.tags import GUIDE

PREFIX = "/console/"
CONSOLE_DIR = Path(__file__).with_name("console")
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
TAGS_FILE = "sim-tags.json"
# Scripts, styles and API calls from this origin only (nothing from the internet); videos from
# wherever the presigned URLs point (the embedded S3).
_POLICY = (
    "default-src 'self'; img-src 'self' data:; media-src 'self' http: https:; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)

_ALLOW = {"Allow": "GET, HEAD"}

Answer = tuple[int, dict[str, str], bytes]


def serves(path: str) -> bool:
    return path == PREFIX.rstrip("/") or path.startswith(PREFIX)


def respond(method: str, path: str) -> Answer:
    """The answer to `method path`, for a path `serves`."""
    if method not in ("GET", "HEAD"):
        return _error(405, "method_not_allowed", "the console is read-only: GET or HEAD", _ALLOW)
    if not path.startswith(PREFIX):  # /console: the page's relative links need the slash
        return 308, {"Location": PREFIX}, b""
    name = path.removeprefix(PREFIX) or "index.html"
    if name == TAGS_FILE:
        body = json.dumps([asdict(tag) for tag in GUIDE]).encode()
        return 200, _headers("application/json"), body
    files = {p.name: p for p in CONSOLE_DIR.iterdir() if p.suffix in CONTENT_TYPES and p.is_file()}
    if name not in files:
        return _error(404, "not_found", f"the console has no file {name!r}")
    return 200, _headers(CONTENT_TYPES[files[name].suffix]), files[name].read_bytes()


def _headers(content_type: str) -> dict[str, str]:
    return {
        "Content-Type": content_type,
        "Cache-Control": "no-cache",  # the page of the checkout as it is now
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": _POLICY,
    }


def _error(status: int, code: str, message: str, extra: dict[str, str] | None = None) -> Answer:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return status, {"Content-Type": "application/json", **(extra or {})}, body
