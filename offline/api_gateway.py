"""The HTTP API, locally: the template's routes, each request turned into an API Gateway HTTP
API (payload 2.0) event for its function, the caller's IAM identity taken from X-Local-Principal.
Beside them, and only here, the local console's static page at /console/ (offline/console.py).
"""

from __future__ import annotations

import base64
import contextvars
import json
import logging
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from offline import console
from offline.aws import ACCOUNT
from offline.functions import LocalFunctions
from offline.servers import LocalHTTPServer
from offline.template import Route

log = logging.getLogger("offline.api_gateway")

MAX_BODY_BYTES = 10 * 1024 * 1024  # HTTP API's payload limit
# HTTP API gives up on an integration after 30 s (a hard limit) and answers 503, whatever the
# function's own Timeout; the function may run on.
INTEGRATION_TIMEOUT_SECONDS = 30.0
DEFAULT_PRINCIPAL = "local-user"


def principal_arn(name: str) -> str:
    """The caller's ARN, as API Gateway's IAM auth hands it over: an ARN given in the header as
    it is (the API function reduces a role's session to its role), else a user of that name."""
    return name if name.startswith("arn:") else f"arn:aws:iam::{ACCOUNT}:user/{name}"


class LocalHttpApi:
    def __init__(
        self,
        routes: list[Route],
        functions: LocalFunctions,
        host: str,
        port: int,
        integration_timeout: float = INTEGRATION_TIMEOUT_SECONDS,
    ) -> None:
        self._routes = routes
        self._functions = functions
        self._integration_timeout = integration_timeout
        handler = type("Handler", (_Handler,), {"api": self})
        self._server = LocalHTTPServer((host, port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def route_key(self, method: str, target: str) -> str:
        path = urlsplit(target).path
        route = next((r for r in self._routes if r.match(method, path) is not None), None)
        return f"{route.method} {route.path}" if route else f"{method} (no route)"

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(target)
        if console.serves(parts.path):  # before the routes: $default would take it
            return console.respond(method, parts.path)
        for route in self._routes:
            params = route.match(method, parts.path)
            if params is not None:
                event = self._event(route, method, params, parts.path, parts.query, headers, body)
                return self._integrate(route, event)
        return _json(404, {"message": "Not Found"})

    def _integrate(self, route: Route, event: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        outcome: dict[str, Any] = {}

        def call() -> None:
            try:
                outcome["result"] = self._functions.invoke(route.function, event)
            except Exception as exc:
                outcome["error"] = exc

        caller = threading.Thread(target=contextvars.copy_context().run, args=(call,), daemon=True)
        caller.start()
        caller.join(self._integration_timeout)
        if caller.is_alive():
            log.warning(
                "integration timed out after %.0f s for %s", self._integration_timeout, route.path
            )
            return _json(503, {"message": "Service Unavailable"})
        if "error" in outcome:
            raise outcome["error"]
        return _response(outcome["result"])

    def _event(
        self,
        route: Route,
        method: str,
        params: dict[str, str],
        path: str,
        query: str,
        headers: dict[str, str],
        body: bytes,
    ) -> dict[str, Any]:
        now = time.time()
        context: dict[str, Any] = {
            "accountId": ACCOUNT,
            "apiId": "local",
            "domainName": self.url.split("://", 1)[1],
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default" if route.path == "$default" else f"{route.method} {route.path}",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        }
        if route.authorized:
            name = headers.get("x-local-principal") or DEFAULT_PRINCIPAL
            context["authorizer"] = {
                "iam": {
                    "accessKey": "LOCALACCESSKEY",
                    "accountId": ACCOUNT,
                    "callerId": name,
                    "principalOrgId": None,
                    "userArn": principal_arn(name),
                    "userId": name,
                }
            }
        try:
            text, encoded = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(body).decode(), True
        return {
            "version": "2.0",
            "routeKey": context["routeKey"],
            "rawPath": path,
            "rawQueryString": query,
            "headers": headers,
            "queryStringParameters": dict(parse_qsl(query, keep_blank_values=True)) or None,
            "pathParameters": params or None,
            "requestContext": context,
            "body": text or None,
            "isBase64Encoded": encoded,
        }


def _response(result: Any) -> tuple[int, dict[str, str], bytes]:
    if not isinstance(result, dict) or "statusCode" not in result:
        # HTTP API's payload 2.0 treats any other value as a JSON 200 body.
        return _json(200, result)
    body = result.get("body") or ""
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    headers = {k: str(v) for k, v in (result.get("headers") or {}).items()}
    for key, values in (result.get("multiValueHeaders") or {}).items():
        headers[key] = ",".join(str(v) for v in values)
    return int(result["statusCode"]), headers, raw


def _json(status: int, body: Any) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


class _Handler(BaseHTTPRequestHandler):
    api: LocalHttpApi
    protocol_version = "HTTP/1.1"

    def _serve(self, send_body: bool = True) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            status, headers, body = _json(413, {"message": "Request Entity Too Large"})
            self.rfile.read(length)
        else:
            request_body = self.rfile.read(length) if length else b""
            request_headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                status, headers, body = self.api.handle(
                    self.command, self.path, request_headers, request_body
                )
            except Exception:  # what API Gateway answers when the integration fails
                # The route, not the path: a callback path carries its task's token.
                log.exception(
                    "integration failed for %s", self.api.route_key(self.command, self.path)
                )
                status, headers, body = _json(500, {"message": "Internal Server Error"})
        self.send_response(status)
        for key, value in headers.items():
            if key.lower() not in ("content-length", "connection"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def __getattr__(self, name: str) -> Any:
        # Every other method goes to the routes too (API Gateway has its `ANY`/`$default`).
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)
