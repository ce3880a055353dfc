"""A function URL offline: an HTTP server that hands each request to its function as the
payload 2.0 event Lambda builds, and answers with the function's result (base64 bodies decoded)."""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar
from urllib.parse import urlsplit

from offline.servers import LocalHTTPServer

Invoker = Callable[[str, dict[str, Any]], Any]


class LocalFunctionUrl:
    def __init__(self, function: str, invoke: Invoker, host: str, port: int) -> None:
        attributes = {"function": function, "invoke": staticmethod(invoke)}
        handler = type("FunctionUrlHandler", (_Handler,), attributes)
        self._server = LocalHTTPServer((host, port), handler)
        self._host = host

    @property
    def url(self) -> str:
        """As Lambda gives it: the origin and a slash."""
        return f"http://{self._host}:{self._server.server_address[1]}/"

    def start(self) -> LocalFunctionUrl:
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    function: ClassVar[str]
    invoke: ClassVar[Invoker]

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        try:
            result = self.invoke(self.function, self._event(body))
        except Exception:  # Lambda's answer to a function error
            result = {"statusCode": 502, "body": '{"message": "Internal Server Error"}'}
        payload = result.get("body") or ""
        content = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
        self.send_response(int(result.get("statusCode", 200)))
        headers = {"Content-Type": "application/json", **result.get("headers", {})}
        headers["Content-Length"] = headers.get("Content-Length", str(len(content)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(content)

    def _event(self, body: bytes) -> dict[str, Any]:
        url = urlsplit(self.path)
        host = self.headers.get("Host", "")
        headers = {k.lower(): v for k, v in self.headers.items()}
        headers["x-forwarded-proto"] = "http"  # Lambda's own is https
        return {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": url.path,
            "rawQueryString": url.query,
            "headers": headers,
            "requestContext": {
                "domainName": host,
                "http": {
                    "method": self.command,
                    "path": url.path,
                    "protocol": self.request_version,
                    "sourceIp": self.client_address[0],
                    "userAgent": headers.get("user-agent", ""),
                },
                "requestId": str(uuid.uuid4()),
                "routeKey": "$default",
                "stage": "$default",
                "timeEpoch": int(time.time() * 1000),
            },
            "body": base64.b64encode(body).decode(),
            "isBase64Encoded": True,
        }
