"""Engines and transactions: SQLite in WAL mode with immediate write locks, or PostgreSQL."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.pool import StaticPool

from loopml.errors import InvalidArgumentError, MissingDependencyError, StoreUnavailableError

__all__ = ["SqlEngine", "make_engine"]

_log = logging.getLogger(__name__)
T = TypeVar("T")
_WRITE_OPTION = "loopml_write"
_LOCKED_RETRIES = 5


def _normalise_url(url: str) -> str:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InvalidArgumentError(
            f"The tracking URI {url!r} is not a valid database URL.", field="tracking_uri"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.drivername in ("postgresql", "postgres"):
            try:
                import psycopg  # noqa: F401
            except ImportError:
                raise MissingDependencyError.for_extra(
                    "psycopg", "postgres", "A PostgreSQL tracking store"
                ) from None
            parsed = parsed.set(drivername="postgresql+psycopg")
        return parsed.render_as_string(hide_password=False)
    if backend != "sqlite":
        raise InvalidArgumentError(
            f"The tracking URI must use sqlite:// or postgresql://. Got {backend!r}.",
            field="tracking_uri",
        )
    return url


def _sqlite_pragmas(busy_timeout: float) -> Callable[..., None]:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # loopml issues BEGIN itself (see _begin), so writes take the lock up front.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        _enable_wal(dbapi_connection, busy_timeout)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA case_sensitive_like = ON")
        cursor.close()

    return on_connect


def _enable_wal(dbapi_connection: Any, busy_timeout: float) -> None:
    """Put the database in WAL mode (a setting stored in the file, so usually already on).

    Switching needs an exclusive lock, and SQLite answers "database is locked" at once,
    without its busy handler, when several fresh connections race for it (each holds a
    shared lock and waiting could deadlock); so the switch is retried here until
    ``busy_timeout``."""
    import sqlite3

    deadline = time.monotonic() + busy_timeout
    delay = 0.005
    while True:
        try:
            # A database that cannot use WAL (in memory, read-only) answers with its mode.
            dbapi_connection.execute("PRAGMA journal_mode = WAL").fetchone()
            return
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            if ("locked" not in text and "busy" not in text) or time.monotonic() > deadline:
                raise
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 0.25)


def _begin(conn: Connection) -> None:
    # An IMMEDIATE transaction takes the write lock at BEGIN, where SQLite's busy handler
    # waits for it; a deferred one that upgrades later fails at once with "database is locked".
    write = conn.get_execution_options().get(_WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def make_engine(url: str, *, busy_timeout: float = 30.0) -> Engine:
    """Create an engine for ``sqlite:///…`` or ``postgresql://…`` with loopml's settings."""
    url = _normalise_url(url)
    if url.startswith("sqlite"):
        memory = make_url(url).database in (None, "", ":memory:")
        kwargs: dict[str, Any] = {
            "connect_args": {"check_same_thread": False, "timeout": busy_timeout},
        }
        if memory:
            kwargs["poolclass"] = StaticPool
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas(busy_timeout))
        event.listen(engine, "begin", _begin)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def _is_locked(exc: OperationalError) -> bool:
    text = str(exc.orig).lower()
    return "database is locked" in text or "database is busy" in text


class SqlEngine:
    """An engine plus the two kinds of transaction the store uses: read and write."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    @contextmanager
    def read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except OperationalError as exc:
            raise self._unavailable(exc) from exc

    def write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in one write transaction, retrying when SQLite reports a lock."""
        for attempt in range(_LOCKED_RETRIES + 1):
            try:
                with self.engine.connect() as conn:
                    conn = conn.execution_options(**{_WRITE_OPTION: True})
                    with conn.begin():
                        return fn(conn)
            except OperationalError as exc:
                if _is_locked(exc) and attempt < _LOCKED_RETRIES:
                    delay = min(2.0, 0.05 * 2**attempt) * (0.5 + random.random())
                    _log.debug("database locked, retrying in %.2fs", delay)
                    time.sleep(delay)
                    continue
                raise self._unavailable(exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _unavailable(self, exc: OperationalError) -> StoreUnavailableError:
        url = self.engine.url.render_as_string(hide_password=True)
        reason = (str(exc.orig).strip().splitlines() or ["unknown error"])[0]
        return StoreUnavailableError(
            f"The metadata store at {url} failed: {reason}", uri=url, reason=reason
        )

    def dispose(self) -> None:
        self.engine.dispose()
