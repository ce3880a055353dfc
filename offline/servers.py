"""The HTTP server class the offline stack's own servers share."""

from __future__ import annotations

from http.server import ThreadingHTTPServer


class LocalHTTPServer(ThreadingHTTPServer):
    """A thread per request, and a listen backlog deep enough for a burst of clients (the
    standard library's 5 resets connections beyond a handful at once)."""

    request_queue_size = 256
    daemon_threads = True
