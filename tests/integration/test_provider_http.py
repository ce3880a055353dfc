"""The provider HTTP session over real loopback sockets: what the environment may not change."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from veo_relay.providers.http import ProviderHttp


class Recorder(ThreadingHTTPServer):
    """Answers every GET with a JSON 200, and records the request line and its headers."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []

        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorder.seen.append((self.requestline, dict(self.headers)))
                body = b'{"code": 200}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def servers() -> Iterator[tuple[Recorder, Recorder]]:
    provider, proxy = Recorder(), Recorder()
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (provider, proxy)]
    for thread in threads:
        thread.start()
    yield provider, proxy
    for server in (provider, proxy):
        server.shutdown()
        server.server_close()


def test_a_proxy_in_the_environment_never_sees_the_key(servers, monkeypatch):
    # Given HTTP(S)_PROXY pointing at a listener, and no NO_PROXY exemption
    provider, proxy = servers
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, proxy.url)
    http = ProviderHttp(provider.url, lambda: "sk-secret")

    # When the provider is asked for a status
    response = http.get("/api/v1/statusTask/veo-3-1", {"taskId": "t1"})

    # Then the request went straight to the provider, and the proxy saw nothing
    assert response.status_code == 200
    assert proxy.seen == []
    [(line, headers)] = provider.seen
    assert line.startswith("GET /api/v1/statusTask/veo-3-1?taskId=t1 ")
    assert headers["Authorization"] == "Bearer sk-secret"
    assert http.session.trust_env is False
