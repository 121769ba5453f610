"""The HTTP transport of the remote store: one place for requests, retries and errors.

Every call goes to ``<base>/api/v1/...`` with a JSON body (or raw bytes for blobs). An error
response carries ``{"error_code", "message", "details"}``; the client raises the same
:class:`~loopml.errors.LoopmlError` subclass the server raised, so code behaves the same
against a local store and a server.

Idempotent calls (reads, puts of content-addressed blobs, metric batches — which the server
deduplicates) are retried with exponential backoff on connection errors and on 502, 503 and
504, for up to ``LOOPML_HTTP_RETRY_SECONDS`` (default 120 s): a server restarting or down for
a minute does not lose a training run's metrics. Other calls are sent once.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx

from loopml._version import __version__
from loopml.errors import LoopmlError, StoreUnavailableError, error_class_for_code

__all__ = ["API_PREFIX", "RestBase", "is_transient"]

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
_RETRY_STATUS = frozenset({502, 503, 504})
_DEFAULT_RETRY_SECONDS = 120.0


def is_transient(exc: BaseException) -> bool:
    """True for a failure worth retrying: the server could not be reached, or answered 502,
    503 or 504 (restarting, overloaded, behind a proxy that lost it)."""
    return bool(getattr(exc, "transient", False))


def _error_from(response: httpx.Response) -> LoopmlError:
    """The loopml error a failed response describes (the same class the server raised)."""
    try:
        body = response.json()
        code, message = str(body["error_code"]), str(body["message"])
        details = body.get("details") or {}
    except (ValueError, KeyError, TypeError):
        text = response.text[:300]
        return StoreUnavailableError(
            f"The server answered {response.status_code} without a loopml error: {text!r}",
            status=response.status_code,
        )
    cls = error_class_for_code(code)
    error = cls.__new__(cls)
    error.transient = response.status_code in _RETRY_STATUS  # type: ignore[attr-defined]
    LoopmlError.__init__(error, message, **(details if isinstance(details, dict) else {}))
    for name, value in details.items() if isinstance(details, dict) else ():
        if not hasattr(error, name):
            setattr(error, name, value)
    return error


class RestBase:
    """Holds the HTTP client; the resource mixins build on :meth:`_call`."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        retry_seconds: float | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        headers = {"User-Agent": f"loopml/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self._base, headers=headers, timeout=timeout, transport=transport
        )
        env = os.environ.get("LOOPML_HTTP_RETRY_SECONDS")
        self._retry_seconds = (
            retry_seconds
            if retry_seconds is not None
            else float(env)
            if env
            else _DEFAULT_RETRY_SECONDS
        )

    @property
    def uri(self) -> str:
        return self._base

    @property
    def retry_seconds(self) -> float:
        """How long idempotent calls are retried for."""
        return self._retry_seconds

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._base!r})"

    # ------------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        content: bytes | Iterator[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> Any:
        """Send one request and return its decoded JSON body (``None`` for 204).

        Raises the loopml error the server reported, or :class:`StoreUnavailableError` when
        the server cannot be reached (after retrying idempotent calls).
        """
        retry = method in ("GET", "HEAD", "PUT", "DELETE") if idempotent is None else idempotent
        response = self._send(
            method, path, json=json, params=params, content=content, headers=headers, retry=retry
        )
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    @contextmanager
    def _stream(
        self, path: str, *, params: Mapping[str, Any] | None = None
    ) -> Iterator[httpx.Response]:
        """A streamed GET (downloads): the body is read in chunks by the caller."""
        deadline = time.monotonic() + self._retry_seconds
        attempt = 0
        while True:
            try:
                with self._http.stream("GET", API_PREFIX + path, params=params) as response:
                    if response.status_code in _RETRY_STATUS and time.monotonic() < deadline:
                        response.read()
                    elif response.status_code >= 400:
                        response.read()
                        raise _error_from(response)
                    else:
                        yield response
                        return
            except httpx.TransportError as exc:
                if time.monotonic() >= deadline:
                    raise self._unreachable(exc) from exc
            attempt += 1
            self.sleep(attempt, deadline)

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any,
        params: Mapping[str, Any] | None,
        content: bytes | Iterator[bytes] | None,
        headers: Mapping[str, str] | None,
        retry: bool,
    ) -> httpx.Response:
        deadline = time.monotonic() + (self._retry_seconds if retry else 0.0)
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    method,
                    API_PREFIX + path,
                    json=json,
                    params=params,
                    content=content,
                    headers=headers,
                )
            except httpx.TransportError as exc:
                if not retry or time.monotonic() >= deadline:
                    raise self._unreachable(exc) from exc
                logger.info("loopml server unreachable (%s); retrying", exc)
            else:
                if response.status_code < 400:
                    return response
                if (
                    not (retry and response.status_code in _RETRY_STATUS)
                    or time.monotonic() >= deadline
                ):
                    raise _error_from(response)
                logger.info("loopml server answered %d; retrying", response.status_code)
            attempt += 1
            self.sleep(attempt, deadline)

    @staticmethod
    def sleep(attempt: int, deadline: float) -> None:
        """Back off before retry number ``attempt`` (never past ``deadline``)."""
        delay = min(5.0, 0.1 * 2**attempt) * (0.5 + random.random())
        time.sleep(max(0.0, min(delay, deadline - time.monotonic())))

    def _unreachable(self, exc: Exception) -> StoreUnavailableError:
        error = StoreUnavailableError(
            f"The loopml server at {self._base} could not be reached: {type(exc).__name__}: {exc}",
            uri=self._base,
        )
        error.transient = True  # type: ignore[attr-defined]
        return error
