"""Turn a tracking URI (and an optional artifacts URI) into an open store.

==========================  =================================================================
tracking URI                store
==========================  =================================================================
*unset*                     embedded: ``./.loopml/loopml.db`` and blobs in ``./.loopml/blobs``
a folder path, ``file://``  embedded in that folder, the same layout
``sqlite:///path/x.db``     that SQLite file; blobs in ``blobs/`` beside it
``postgresql://…``          that database; blobs from ``LOOPML_ARTIFACTS_URI`` (required)
``http(s)://…``             a ``loopml server`` (arrives with the tracking-server issue)
==========================  =================================================================

This is the one place that imports the SQL store, so ``import loopml`` stays light.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlparse

from loopml.config import Settings
from loopml.errors import InvalidArgumentError
from loopml.storage.protocols import TrackingStore

__all__ = [
    "StoreLocation",
    "clear_store_cache",
    "get_tracking_uri",
    "open_store",
    "resolve_location",
    "set_tracking_uri",
]

DEFAULT_FOLDER = ".loopml"
_DB_NAME = "loopml.db"
_stores: dict[tuple[str, str], TrackingStore] = {}
_lock = threading.Lock()
_tracking_uri: str | None = None


def set_tracking_uri(uri: str | os.PathLike[str] | None) -> None:
    """Set the tracking URI for this process: it overrides ``LOOPML_TRACKING_URI`` for the
    fluent API, the data API and every ``Client()`` created without one. ``None`` clears it."""
    global _tracking_uri
    if uri is not None and not isinstance(uri, str | os.PathLike):
        raise InvalidArgumentError(
            f"The tracking URI must be a string or path. Got {type(uri).__name__}.",
            field="tracking_uri",
        )
    _tracking_uri = os.fspath(uri) if uri is not None else None


def get_tracking_uri() -> str | None:
    """The URI set by :func:`set_tracking_uri`, or ``None`` (then settings decide)."""
    return _tracking_uri


@dataclass(frozen=True)
class StoreLocation:
    """Where metadata and blobs live, after defaults are applied."""

    db_url: str
    artifacts_uri: str


def _sqlite_in(folder: Path) -> StoreLocation:
    folder = folder.expanduser().absolute()
    return StoreLocation(f"sqlite:///{folder / _DB_NAME}", str(folder / "blobs"))


def _from_tracking(uri: str) -> StoreLocation:
    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    if scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt"):
        path = parsed.path if scheme == "file" else uri
        return _sqlite_in(Path(path))
    if scheme.startswith("sqlite"):
        database = uri.split(":///", 1)[1] if ":///" in uri else ""
        if not database or database == ":memory:":
            return StoreLocation(uri, "")
        db_path = Path(database).expanduser().absolute()
        return StoreLocation(f"sqlite:///{db_path}", str(db_path.parent / "blobs"))
    if scheme.startswith(("postgresql", "postgres")):
        return StoreLocation(uri, "")
    if scheme in ("http", "https"):
        if not parsed.hostname:
            raise InvalidArgumentError(
                f"The tracking URI {uri!r} names no host; expected http(s)://host:port.",
                field="tracking_uri",
            )
        return StoreLocation(uri.rstrip("/"), "")
    raise InvalidArgumentError(
        f"The tracking URI {uri!r} has an unknown scheme {scheme!r}; expected a folder path, "
        "sqlite:///…, postgresql://… or http(s)://….",
        field="tracking_uri",
    )


def resolve_location(
    tracking_uri: str | os.PathLike[str] | None = None,
    artifacts_uri: str | None = None,
    settings: Settings | None = None,
) -> StoreLocation:
    """Apply the documented defaults: argument, then ``LOOPML_*`` settings, then embedded."""
    settings = settings or Settings.from_env()
    uri = tracking_uri or settings.tracking_uri
    if uri is not None and not isinstance(uri, str | os.PathLike):
        raise InvalidArgumentError(
            f"The tracking URI must be a string. Got {type(uri).__name__}.", field="tracking_uri"
        )
    location = _sqlite_in(Path(DEFAULT_FOLDER)) if not uri else _from_tracking(os.fspath(uri))
    blobs = artifacts_uri or settings.artifacts_uri or location.artifacts_uri
    if not blobs:
        blobs = str(Path(DEFAULT_FOLDER, "blobs").absolute())
    return StoreLocation(location.db_url, blobs)


def _storage_options(artifacts_uri: str, settings: Settings) -> dict[str, Any]:
    if artifacts_uri.startswith("s3://") and settings.s3_endpoint_url:
        return {"client_kwargs": {"endpoint_url": settings.s3_endpoint_url}}
    return {}


def _dispose_after_fork() -> None:
    """A forked child must not reuse the parent's database connections: drop them from the
    pools without closing them (closing would disturb the parent's use of them)."""
    for store in _stores.values():
        dispose = getattr(store, "dispose_after_fork", None)
        if dispose is not None:
            dispose()


_fork_hook = False


def open_store(
    tracking_uri: str | os.PathLike[str] | None = None,
    artifacts_uri: str | None = None,
    settings: Settings | None = None,
) -> TrackingStore:
    """The store for these URIs, opened once per process and shared (thread-safe)."""
    settings = settings or Settings.from_env()
    if tracking_uri is None:
        tracking_uri = _tracking_uri
    location = resolve_location(tracking_uri, artifacts_uri, settings)
    if location.db_url.startswith(("http://", "https://")):
        location = StoreLocation(location.db_url, "")  # the server keeps the blobs
    key = (location.db_url, location.artifacts_uri)
    global _fork_hook
    with _lock:
        if not _fork_hook:
            os.register_at_fork(after_in_child=_dispose_after_fork)
            _fork_hook = True
        store = _stores.get(key)
        if store is None:
            store = _open(location, settings)
            _stores[key] = store
        return store


def _open(location: StoreLocation, settings: Settings) -> TrackingStore:
    if location.db_url.startswith(("http://", "https://")):
        from loopml.storage.rest import RestStore

        return cast(TrackingStore, RestStore(location.db_url, token=settings.token))
    from loopml.storage.blobs import BlobStore
    from loopml.storage.sql import SqlStore

    if location.db_url.startswith("sqlite:///"):
        Path(location.db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    options = _storage_options(location.artifacts_uri, settings)
    blobs = BlobStore(location.artifacts_uri, storage_options=options)
    return SqlStore(location.db_url, blobs, busy_timeout=settings.sqlite_busy_timeout)


def clear_store_cache() -> None:
    """Close and forget every store opened by :func:`open_store` (for tests)."""
    with _lock:
        for store in _stores.values():
            store.close()
        _stores.clear()
