"""Webhook delivery against a real local receiver, and the addresses it must refuse
(RELIABILITY S4): loopback, metadata, numeric and mapped forms, private networks, redirects
to internal addresses, DNS answers that change between the check and the connection."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from loopml.errors import InvalidArgumentError
from loopml.monitoring.webhooks import WebhookRefused, check_url, send_webhook


class Receiver:
    """An HTTP server on 127.0.0.1 that records what it gets and answers from a script."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.answers: list[tuple[int, dict[str, str]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                receiver.received.append(
                    {
                        "path": self.path,
                        "host": self.headers.get("host"),
                        "type": self.headers.get("content-type"),
                        "body": json.loads(self.rfile.read(length)),
                    }
                )
                status, headers = receiver.answers.pop(0) if receiver.answers else (200, {})
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


def _resolver(table: dict[str, list[str]]) -> Any:
    def resolve(host: str, _port: int) -> list[str]:
        return table[host]

    return resolve


def test_delivers_json_to_an_allowed_host(receiver: Receiver) -> None:
    payload = {"monitor": "churn-prod", "alert": "drift", "features": ["tenure"]}
    delivery = send_webhook(
        f"http://127.0.0.1:{receiver.port}/hook?x=1", payload, allow_hosts=["127.0.0.1"]
    )
    assert delivery.delivered
    assert (delivery.status, delivery.attempts, delivery.address) == (200, 1, "127.0.0.1")
    (got,) = receiver.received
    assert got["body"] == payload
    assert got["path"] == "/hook?x=1"
    assert got["type"] == "application/json"


def test_the_checked_address_is_the_one_connected_to(receiver: Receiver) -> None:
    """The name resolves once, through loopml's check; the connection goes to that address
    with the name in the Host header (the system resolver never sees it: no rebinding)."""
    resolve = _resolver({"alerts.example.internal": ["127.0.0.1"]})
    delivery = send_webhook(
        f"http://alerts.example.internal:{receiver.port}/x",
        {"a": 1},
        allow_hosts=["alerts.example.internal"],
        resolver=resolve,
    )
    assert delivery.delivered
    assert receiver.received[0]["host"] == f"alerts.example.internal:{receiver.port}"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1/x", "loopback"),
        ("http://localhost/x", "loopback"),
        ("http://2130706433/x", "loopback"),
        ("http://0x7f.1/x", "loopback"),
        ("http://[::1]/x", "loopback"),
        ("http://[::ffff:127.0.0.1]/x", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[fd00:ec2::254]/x", "metadata"),
        ("http://169.254.10.1/x", "link-local"),
        ("http://10.1.2.3/x", "private"),
        ("http://192.168.0.10/x", "private"),
        ("http://0.0.0.0/x", "unspecified"),
    ],
)
def test_internal_addresses_are_refused(url: str, why: str) -> None:
    with pytest.raises(WebhookRefused, match=why):
        check_url(url)
    delivery = send_webhook(url, {"a": 1})
    assert not delivery.delivered
    assert delivery.status is None
    assert why in (delivery.error or "")


def test_allow_private_never_opens_metadata_or_link_local() -> None:
    assert check_url("http://10.1.2.3/x", allow_private=True) == "10.1.2.3"
    for url in ("http://169.254.169.254/", "http://169.254.1.1/", "http://127.0.0.1/"):
        with pytest.raises(WebhookRefused):
            check_url(url, allow_private=True)


def test_a_name_resolving_to_any_internal_address_is_refused() -> None:
    resolve = _resolver({"evil.example": ["93.184.216.34", "127.0.0.1"]})
    with pytest.raises(WebhookRefused, match="loopback"):
        check_url("http://evil.example/x", resolver=resolve)


def test_a_redirect_to_an_internal_address_is_not_followed(receiver: Receiver) -> None:
    receiver.answers = [(302, {"Location": "http://169.254.169.254/latest/meta-data/"})]
    delivery = send_webhook(
        f"http://127.0.0.1:{receiver.port}/hook", {"a": 1}, allow_hosts=["127.0.0.1"]
    )
    assert not delivery.delivered
    assert "metadata" in (delivery.error or "")
    assert len(receiver.received) == 1  # only the first hop was called
    assert any("refused" in step for step in delivery.history)


def test_a_redirect_to_an_allowed_host_is_followed(receiver: Receiver) -> None:
    receiver.answers = [(307, {"Location": "/moved"}), (204, {})]
    delivery = send_webhook(
        f"http://127.0.0.1:{receiver.port}/hook", {"a": 1}, allow_hosts=["127.0.0.1"]
    )
    assert delivery.delivered
    assert [r["path"] for r in receiver.received] == ["/hook", "/moved"]


def test_retries_on_5xx_and_stops_on_4xx(receiver: Receiver) -> None:
    receiver.answers = [(503, {}), (502, {}), (200, {})]
    delivery = send_webhook(
        f"http://127.0.0.1:{receiver.port}/h", {"a": 1}, allow_hosts=["127.0.0.1"], backoff=0.01
    )
    assert delivery.delivered
    assert delivery.attempts == 3
    receiver.received.clear()
    receiver.answers = [(400, {}), (200, {})]
    refused = send_webhook(
        f"http://127.0.0.1:{receiver.port}/h", {"a": 1}, allow_hosts=["127.0.0.1"], backoff=0.01
    )
    assert not refused.delivered
    assert refused.status == 400
    assert len(receiver.received) == 1


def test_an_unreachable_receiver_is_retried_then_reported() -> None:
    delivery = send_webhook(
        "http://127.0.0.1:9/h", {"a": 1}, allow_hosts=["127.0.0.1"], attempts=2, backoff=0.01
    )
    assert not delivery.delivered
    assert delivery.attempts == 2
    assert "ConnectError" in (delivery.error or "")


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "file:///etc/passwd", "http:///x", "not a url", 42, "x" * 3000]
)
def test_malformed_urls_name_the_field(url: Any) -> None:
    with pytest.raises(InvalidArgumentError) as refused:
        send_webhook(url, {"a": 1})
    assert refused.value.details["field"] == "url"


def test_a_payload_that_is_not_json_names_the_field() -> None:
    with pytest.raises(InvalidArgumentError) as refused:
        send_webhook("http://example.com/x", {"a": float("nan")})
    assert refused.value.details["field"] == "payload"


def test_creating_a_monitor_checks_literal_addresses_but_resolves_no_name() -> None:
    from loopml.monitoring.webhooks import validate_webhook_url

    # a name is checked at every delivery, when it is resolved (the network may be absent now)
    assert validate_webhook_url("https://alerts.invalid/hook") == "https://alerts.invalid/hook"
    for url in ("http://169.254.169.254/x", "http://2130706433/x", "http://[::1]/x"):
        with pytest.raises(WebhookRefused):
            validate_webhook_url(url)
    assert validate_webhook_url("http://127.0.0.1:9/x", allow_hosts=["127.0.0.1"])
    with pytest.raises(InvalidArgumentError):
        validate_webhook_url("gopher://x")
