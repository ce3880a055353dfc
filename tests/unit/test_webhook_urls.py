"""Unit tests for veo_relay.webhook_urls: the checks on a client's webhook URL at create, made
without any DNS lookup (DNS is a fake ``socket.getaddrinfo`` that records the names asked)."""

from __future__ import annotations

import socket

import pytest

from tests.helpers import FakeDns
from veo_relay.errors import InvalidRequest
from veo_relay.webhook_urls import check_webhook_url

PUBLIC_IP = "93.184.216.34"


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    fake = FakeDns({"hooks.example.com": [PUBLIC_IP]})
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    return fake


# --------------------------------------------------------------------------- check_webhook_url


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/veo",
        "https://hooks.example.com:8443/veo?tenant=1",
        f"https://{PUBLIC_IP}/hook",
        "https://[2606:4700:4700::1111]/hook",
    ],
)
@pytest.mark.parametrize("allow_loopback", [False, True])
def test_a_public_https_url_is_accepted_without_any_dns_lookup(url, allow_loopback, dns):
    # Given a public https URL
    # When it is checked at create
    check_webhook_url(url, allow_loopback)

    # Then it passes, and nothing was resolved (addresses are checked at each delivery)
    assert dns.queries == []


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/veo",
        "http://93.184.216.34/hook",
    ],
)
@pytest.mark.parametrize("allow_loopback", [False, True])
def test_plain_http_is_refused_unless_it_is_loopback_under_allow_loopback(url, allow_loopback):
    # Given an http URL to a host that is not loopback
    # When it is checked, Then it is refused naming webhook_url, whatever allow_loopback says
    with pytest.raises(InvalidRequest, match="https") as refused:
        check_webhook_url(url, allow_loopback)
    assert refused.value.field == "webhook_url"
    assert str(refused.value).startswith("webhook_url: ")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://127.0.0.2:8080/hook",
        "http://localhost:8080/hook",
        "http://[::1]:8080/hook",
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://[::1]/hook",
    ],
)
def test_loopback_is_refused_by_default_and_allowed_with_allow_loopback(url):
    # Given a loopback receiver's URL
    # When checked without allow_loopback, Then it is refused naming webhook_url
    with pytest.raises(InvalidRequest) as refused:
        check_webhook_url(url, allow_loopback=False)
    assert refused.value.field == "webhook_url"

    # When checked with allow_loopback (the offline stack), Then it passes
    check_webhook_url(url, allow_loopback=True)


@pytest.mark.parametrize(
    "host",
    [
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "192.0.2.10",
        "198.18.0.1",
        "224.0.0.1",
        "255.255.255.255",
        "[fd00::1]",
        "[fe80::1]",
        "[::]",
        "[::ffff:127.0.0.1]",
        "[::ffff:10.0.0.1]",
        "[64:ff9b::a00:1]",
        "[2002:a00:1::]",
        "[2001:db8::1]",
    ],
)
@pytest.mark.parametrize("allow_loopback", [False, True])
def test_private_and_special_ip_literals_are_refused(host, allow_loopback):
    # Given an https URL whose host is a private or special-purpose address literal
    url = f"https://{host}/hook"

    # When it is checked, Then it is refused naming webhook_url, even under allow_loopback
    with pytest.raises(InvalidRequest) as refused:
        check_webhook_url(url, allow_loopback)
    assert refused.value.field == "webhook_url"


@pytest.mark.parametrize(
    "url",
    [
        "https://user:pass@hooks.example.com/hook",
        "https://hooks.example.com@127.0.0.1/hook",
        "https://hooks.example.com:443@10.0.0.1/hook",
        "https://hooks.example.com\\@127.0.0.1/hook",
        "https://2130706433/hook",
        "https://0x7f000001/hook",
        "https://0x7f.1/hook",
        "https://0177.0.0.1/hook",
        "https://127.1/hook",
        "http://127.1:8080/hook",
        "http://017700000001:8080/hook",
        "https://10.0.0.1./hook",
        "https://hooks.example.com /hook",
        "https://hooks.exämple.com/hook",
        "ftp://hooks.example.com/hook",
        "file:///etc/passwd",
        "hooks.example.com/hook",
        "https:///hook",
        "https://hooks.example.com:0/hook",
        "https://hooks.example.com:70000/hook",
        "",
    ],
)
@pytest.mark.parametrize("allow_loopback", [False, True])
def test_userinfo_numeric_host_and_malformed_tricks_are_refused(url, allow_loopback):
    # Given a URL that hides its real host, or is not an http(s) URL at all
    # When it is checked, Then it is refused naming webhook_url, even under allow_loopback
    with pytest.raises(InvalidRequest) as refused:
        check_webhook_url(url, allow_loopback)
    assert refused.value.field == "webhook_url"
    assert str(refused.value).startswith("webhook_url: ")
