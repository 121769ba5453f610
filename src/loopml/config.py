"""Typed settings, read from ``LOOPML_*`` environment variables at call time.

Tests (and embedding applications) pass their own mapping instead of touching ``os.environ``::

    settings = Settings.from_env({"LOOPML_TRACKING_URI": "sqlite:///tmp/x.db"})
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from loopml.errors import InvalidArgumentError

__all__ = ["Settings", "get_settings"]

_PREFIX = "LOOPML_"


@dataclass(frozen=True)
class Settings:
    """Every knob loopml reads from the environment, with its default.

    ``tracking_uri``: where metadata lives (``LOOPML_TRACKING_URI``); ``None`` means the
    embedded store in ``./.loopml``. ``artifacts_uri``: where blobs live
    (``LOOPML_ARTIFACTS_URI``); ``None`` means beside the metadata.
    """

    tracking_uri: str | None = None
    artifacts_uri: str | None = None
    #: the bearer token sent to a loopml server (``http(s)://`` tracking URIs)
    token: str | None = None
    #: endpoint of an S3-compatible server for ``s3://`` artifact URIs (MinIO, moto, ...)
    s3_endpoint_url: str | None = None
    #: seconds between background flushes of buffered metrics
    flush_interval: float = 1.0
    #: buffered points that trigger an early flush
    flush_max_points: int = 20_000
    #: seconds between heartbeats of an active fluent run
    heartbeat_interval: float = 10.0
    #: a RUNNING run whose heartbeat is older than this many seconds is marked KILLED
    heartbeat_timeout: float = 60.0
    #: seconds SQLite waits for a write lock before retrying
    sqlite_busy_timeout: float = 30.0
    #: seconds between samples of system metrics (``start_run(system_metrics=True)``)
    system_metrics_interval: float = 10.0
    #: this machine's cache folder (the stat cache of ``data add``, materialised datasets);
    #: ``None`` means ``$XDG_CACHE_HOME/loopml`` or ``~/.cache/loopml``
    cache_dir: str | None = None
    #: largest total of uncompressed bytes ``data add --unpack`` takes from one archive
    max_archive_bytes: int = 10 * 1024**3

    def resolved_cache_dir(self) -> str:
        """The cache folder, with the documented default applied (not created here)."""
        if self.cache_dir:
            return os.path.abspath(os.path.expanduser(self.cache_dir))
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        return os.path.join(base, "loopml")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default: ``os.environ``), validating every value."""
        source = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = _PREFIX + f.name.upper()
            raw = source.get(name)
            if raw is None or raw == "":
                continue
            values[f.name] = _convert(name, raw, f.default)
        return cls(**values)

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with some fields replaced (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def _convert(name: str, raw: str, default: Any) -> Any:
    if isinstance(default, float):
        try:
            value = float(raw)
        except ValueError:
            raise InvalidArgumentError(
                f"The environment variable {name} must be a number. Got {raw!r} instead.",
                field=name,
            ) from None
        if not value > 0:
            raise InvalidArgumentError(
                f"The environment variable {name} must be a number > 0. Got {raw!r} instead.",
                field=name,
            )
        return value
    if isinstance(default, int):
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value <= 0:
            raise InvalidArgumentError(
                f"The environment variable {name} must be a positive integer. Got {raw!r} instead.",
                field=name,
            )
        return value
    return raw


def get_settings(env: Mapping[str, str] | None = None) -> Settings:
    """The current settings (environment read now, not at import)."""
    return Settings.from_env(env)
