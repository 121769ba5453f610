"""Deliver alerts to webhooks: POSTed JSON, retried, and never to an address it should not
reach (RELIABILITY S4).

A webhook URL comes from a user's monitor configuration, so it is treated as untrusted: a URL
that reaches the cloud metadata service (``169.254.169.254``), a link-local, loopback,
private or otherwise internal address would let whoever writes monitor configurations make
the server call into its own network (server-side request forgery). So:

* the host name is resolved once per attempt and **every** address it resolves to is
  checked; the request then goes to that checked address (the URL's host kept for the
  ``Host`` header and TLS), so a DNS answer that changes between the check and the
  connection (rebinding) cannot redirect it;
* numeric forms are read as the resolver reads them (``2130706433``, ``0x7f.1``, ``[::1]``,
  IPv4-mapped IPv6) and checked the same way;
* redirects are followed (at most 3) only after the same check on the new URL, and only to
  ``http``/``https``;
* refused: loopback, link-local (the metadata addresses included), private (RFC 1918, unique
  local IPv6), carrier-grade NAT, multicast, reserved and unspecified addresses — unless the
  caller allows the host explicitly (``allow_hosts``, e.g. a receiver on 127.0.0.1 in a test,
  or an internal alert router), or allows private networks (``allow_private``) while
  link-local and metadata addresses stay refused unless named in ``allow_hosts``.

Delivery: ``POST`` of the JSON body with ``Content-Type: application/json`` and
``User-Agent: loopml``, a 5 s timeout, retried with exponential backoff on connection errors,
429 and 5xx (3 attempts by default). Every attempt is logged on ``loopml.monitoring.webhooks``
(the audit trail: URL without credentials, resolved address, status, or why it was refused).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from loopml.errors import InvalidArgumentError, PermissionDeniedError

__all__ = ["Delivery", "WebhookRefused", "check_url", "send_webhook", "validate_webhook_url"]

logger = logging.getLogger(__name__)

_METADATA = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),
        ipaddress.ip_address("169.254.170.2"),
        ipaddress.ip_address("fd00:ec2::254"),
        ipaddress.ip_address("100.100.100.200"),
    }
)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_MAX_REDIRECTS = 3

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]


class WebhookRefused(PermissionDeniedError):
    """The webhook's address is one loopml does not call (see the module docstring)."""


@dataclass(frozen=True)
class Delivery:
    """What happened to one webhook call."""

    url: str
    delivered: bool
    status: int | None
    attempts: int
    address: str | None = None
    error: str | None = None
    history: tuple[str, ...] = field(default=())

    def audit(self) -> dict[str, Any]:
        """What to keep on record: the URL without credentials or query, and the outcome."""
        return {
            "url": _shown(self.url),
            "delivered": self.delivered,
            "status": self.status,
            "attempts": self.attempts,
            "address": self.address,
            "error": self.error,
            "history": list(self.history),
        }


def _default_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def _shown(url: str) -> str:
    """The URL without credentials, for logs and errors."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _why_blocked(address: Address, allow_private: bool) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in _METADATA:
        return "a cloud metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT and not allow_private:
        return "a carrier-grade NAT address"
    if address.is_private and not allow_private:
        return "a private address"
    if address.is_reserved:
        return "a reserved address"
    return None


@dataclass(frozen=True)
class _Target:
    url: str
    host: str
    port: int
    address: str


def check_url(
    url: Any,
    *,
    allow_hosts: Iterable[str] = (),
    allow_private: bool = False,
    resolver: Resolver | None = None,
) -> str:
    """The checked address ``url`` would be sent to; raises :class:`WebhookRefused` for an
    address loopml does not call and :class:`InvalidArgumentError` for a malformed URL."""
    return _resolve(url, frozenset(h.lower() for h in allow_hosts), allow_private, resolver).address


def _literal(host: str) -> str | None:
    """The address a host that is an address names (in any form the resolver takes:
    ``2130706433``, ``0x7f.1``, ``[::1]``), else None for a name."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return None


def validate_webhook_url(
    url: Any, *, allow_hosts: Iterable[str] = (), allow_private: bool = False
) -> str:
    """Check ``url`` without resolving it (when a monitor is created: the network may not be
    there yet): http(s) with a host, and a host given as an address must be one loopml calls.
    Names are checked where it matters, at every delivery. Returns the URL."""
    allowed = frozenset(h.lower() for h in allow_hosts)

    def literal_only(host: str, _port: int) -> list[str]:
        address = _literal(host)
        return [address] if address is not None else []  # a name: nothing to check yet

    target = _resolve(url, allowed, allow_private, literal_only, unresolved_ok=True)
    return target.url


def _resolve(
    url: Any,
    allowed: frozenset[str],
    allow_private: bool,
    resolver: Resolver | None,
    *,
    unresolved_ok: bool = False,
) -> _Target:
    if not isinstance(url, str) or len(url) > 2048:
        raise InvalidArgumentError(
            "A webhook URL must be a string of at most 2048 characters.", field="url"
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidArgumentError(f"Invalid webhook URL: {exc}", field="url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgumentError(
            f"A webhook URL must be http:// or https:// with a host, not {_shown(url)!r}.",
            field="url",
        )
    host = parts.hostname.lower()
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = (resolver or _default_resolver)(host, port)
    except (OSError, UnicodeError) as exc:
        raise InvalidArgumentError(
            f"The webhook host {host!r} does not resolve: {exc}", field="url"
        ) from None
    if not addresses:
        if unresolved_ok:
            return _Target(url, host, port, host)
        raise InvalidArgumentError(f"The webhook host {host!r} does not resolve.", field="url")
    explicitly_allowed = host in allowed
    for text in addresses:
        address = ipaddress.ip_address(text.split("%")[0])
        reason = (
            None
            if explicitly_allowed or str(address) in allowed
            else _why_blocked(address, allow_private)
        )
        if reason is not None:
            raise WebhookRefused(
                f"Webhook {_shown(url)} resolves to {address}, {reason}; loopml does not call "
                "it (allow the host explicitly if it is yours).",
                url=_shown(url),
                address=str(address),
            )
    return _Target(url, host, port, addresses[0])


def _request(client: httpx.Client, target: _Target, body: bytes) -> httpx.Response:
    """POST to the checked address, keeping the URL's host for Host and TLS."""
    parts = urlsplit(target.url)
    literal = f"[{target.address}]" if ":" in target.address else target.address
    pinned = urlunsplit(
        (parts.scheme, f"{literal}:{target.port}", parts.path or "/", parts.query, "")
    )
    default_port = 443 if parts.scheme == "https" else 80
    host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "loopml-webhook",
        "Host": host_header,
    }
    extensions = {"sni_hostname": target.host} if parts.scheme == "https" else {}
    return client.post(pinned, content=body, headers=headers, extensions=extensions)


def send_webhook(
    url: str,
    payload: Mapping[str, Any],
    *,
    attempts: int = 3,
    timeout: float = 5.0,
    backoff: float = 0.5,
    allow_hosts: Iterable[str] = (),
    allow_private: bool = False,
    resolver: Resolver | None = None,
    transport: httpx.BaseTransport | None = None,
) -> Delivery:
    """POST ``payload`` as JSON to ``url`` (see the module docstring); never raises for a
    delivery failure: the :class:`Delivery` says what happened.

    Raises:
        InvalidArgumentError: ``url`` is malformed, ``payload`` is not JSON-serialisable, or
            ``attempts`` is not a positive integer.
    """
    if not isinstance(attempts, int) or isinstance(attempts, bool) or not 1 <= attempts <= 10:
        raise InvalidArgumentError("attempts must be an integer from 1 to 10.", field="attempts")
    try:
        body = json.dumps(payload, allow_nan=False, default=str).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(
            f"The webhook payload is not JSON: {exc}", field="payload"
        ) from None
    allowed = frozenset(h.lower() for h in allow_hosts)
    history: list[str] = []
    status: int | None = None
    error: str | None = None
    address: str | None = None
    with httpx.Client(timeout=timeout, follow_redirects=False, transport=transport) as client:
        for attempt in range(1, attempts + 1):
            current = url
            try:
                for _hop in range(_MAX_REDIRECTS + 1):
                    target = _resolve(current, allowed, allow_private, resolver)
                    address = target.address
                    response = _request(client, target, body)
                    status = response.status_code
                    history.append(f"{_shown(current)} -> {address}: {status}")
                    location = response.headers.get("location")
                    if status in (301, 302, 303, 307, 308) and location:
                        current = urljoin(current, location)
                        continue
                    break
                else:
                    error = f"more than {_MAX_REDIRECTS} redirects"
                    status = None
            except WebhookRefused as exc:
                logger.warning("webhook refused: %s", exc.message)
                history.append(f"{_shown(current)}: refused ({exc.details.get('address')})")
                return Delivery(
                    url,
                    False,
                    None,
                    attempt,
                    exc.details.get("address"),
                    exc.message,
                    tuple(history),
                )
            except InvalidArgumentError as exc:
                if current == url:
                    raise
                error = exc.message  # a redirect to a malformed URL
                status = None
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
                status = None
                history.append(f"{_shown(current)}: {error}")
            if status is not None and 200 <= status < 300:
                logger.info("webhook delivered to %s (%s) with %d", _shown(url), address, status)
                return Delivery(url, True, status, attempt, address, None, tuple(history))
            if status is not None and status < 500 and status != 429:
                error = f"answered {status}"
                break  # the receiver refused it: retrying will not help
            if attempt < attempts:
                time.sleep(backoff * 2 ** (attempt - 1))
    logger.warning("webhook to %s failed: %s", _shown(url), error or f"answered {status}")
    return Delivery(
        url, False, status, attempt, address, error or f"answered {status}", tuple(history)
    )
