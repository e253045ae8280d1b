"""The outbound guard: https only, no private, loopback, link-local or metadata addresses,
checked on every request and every redirect hop."""

from __future__ import annotations

import socket

import pytest
import responses

from adapters.base import OutboundBlocked
from adapters.http import check_url, guarded_session


@pytest.fixture
def public_dns(monkeypatch):
    """No DNS here: names resolve to what the test says."""
    table = {
        "psa.example.com": "93.184.216.34",
        "evil.example.com": "10.0.0.8",
        "meta.example.com": "169.254.169.254",
        "six.example.com": "::1",
    }

    def fake(host, port, *args, **kwargs):
        ip = table.get(host, host)
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (ip, port))]

    monkeypatch.setattr("adapters.http.socket.getaddrinfo", fake)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://psa.example.com/x", "https is required"),
        ("ftp://psa.example.com/x", r"not an http\(s\) URL"),
        ("https://127.0.0.1/x", "resolves to 127.0.0.1"),
        ("https://10.1.2.3/x", "resolves to 10.1.2.3"),
        ("https://192.168.1.1/x", "resolves to"),
        ("https://169.254.169.254/latest/meta-data", "resolves to"),
        ("https://meta.example.com/", "resolves to 169.254.169.254"),
        ("https://evil.example.com/", "resolves to 10.0.0.8"),
        ("https://six.example.com/", "resolves to ::1"),
        ("https://[::ffff:127.0.0.1]/", "resolves to"),
        ("https://metadata.google.internal/", "cloud metadata host"),
    ],
)
def test_refused(public_dns, url, why):
    with pytest.raises(OutboundBlocked, match=why):
        check_url(url, allow_private=False)


def test_allowed(public_dns):
    check_url("https://psa.example.com/v4_6_release/apis/3.0", allow_private=False)
    check_url("http://127.0.0.1:8800/", allow_private=True)  # the sandbox and tests


@responses.activate
def test_redirect_to_a_private_address_is_refused(public_dns):
    responses.get(
        "https://psa.example.com/start",
        status=302,
        headers={"Location": "https://evil.example.com/steal"},
    )
    responses.get("https://evil.example.com/steal", body="secret")
    with pytest.raises(OutboundBlocked, match=r"10\.0\.0\.8"):
        guarded_session(allow_private=False).get("https://psa.example.com/start")
    assert [c.request.url for c in responses.calls] == ["https://psa.example.com/start"]
