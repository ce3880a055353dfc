"""`python -m bench.video_server PORT`: GET /<size>.mp4 answers that many bytes of MP4, generated
as they are sent (the simulator's deterministic bytes), never held in memory."""

from __future__ import annotations

import re
import sys
from http.server import BaseHTTPRequestHandler
from typing import Any

from offline.servers import LocalHTTPServer
from offline.simulator import iter_mp4

SEED = "bench"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        found = re.fullmatch(r"/(\d+)\.mp4", self.path)
        if found is None:
            self.send_error(404)
            return
        size = int(found.group(1))
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        for chunk in iter_mp4(size, SEED):
            self.wfile.write(chunk)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request is noise here


def main() -> None:
    server = LocalHTTPServer(("127.0.0.1", int(sys.argv[1])), _Handler)
    server.serve_forever()


if __name__ == "__main__":
    main()
