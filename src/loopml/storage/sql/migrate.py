"""Bring a database's schema to the newest revision, safely when several processes start at once.

One process migrates while holding a lock (a lock file beside a SQLite database, an advisory
lock on PostgreSQL); the others wait for it, then find the schema current and go on. A store
that is already current is checked with one query and no Alembic import.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from loopml.errors import StoreUnavailableError
from loopml.storage.sql.migrations import HEAD, VERSION_TABLE

__all__ = ["alembic_head", "current_revision", "upgrade"]

_log = logging.getLogger(__name__)
_PG_LOCK_KEY = 0x6C6F6F706D6C  # "loopml"
_MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def current_revision(conn: Connection) -> str | None:
    """The revision recorded in the database, or ``None`` for an empty database."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    return conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def _alembic_config(conn: Connection):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS_DIR))
    config.attributes["connection"] = conn
    return config


def alembic_head() -> str:
    """Alembic's own idea of the head revision (used by tests to check ``HEAD``)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


@contextmanager
def _sqlite_lock(engine: Engine) -> Iterator[None]:
    from filelock import FileLock

    database = engine.url.database
    if not database or database == ":memory:":
        yield
        return
    lock_path = os.path.abspath(database) + ".migrate.lock"
    with FileLock(lock_path, timeout=300):
        yield


@contextmanager
def _postgres_lock(conn: Connection) -> Iterator[None]:
    conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
    conn.commit()
    try:
        yield
    finally:
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
        conn.commit()


def _is_current(engine: Engine) -> bool:
    with engine.connect() as conn:
        revision = current_revision(conn)
    if revision is not None and revision != HEAD:
        _log.info("metadata schema at revision %s, upgrading to %s", revision, HEAD)
    return revision == HEAD


def _run_alembic(conn: Connection) -> None:
    from alembic import command
    from alembic.util import CommandError

    revision = current_revision(conn)
    try:
        command.upgrade(_alembic_config(conn), "head")
    except CommandError as exc:
        conn.rollback()
        url = conn.engine.url.render_as_string(hide_password=True)
        raise StoreUnavailableError(
            f"The metadata store at {url} has schema revision {revision!r}, which this version "
            f"of loopml does not know (it knows up to {HEAD!r}); it was probably written by a "
            f"newer loopml. Upgrade loopml to open it. ({exc})",
            uri=url,
        ) from exc
    conn.commit()


def upgrade(engine: Engine) -> bool:
    """Migrate the database behind ``engine`` to ``HEAD`` if it is not there yet; True if this
    call migrated it."""
    try:
        if _is_current(engine):
            return False
        if engine.dialect.name == "sqlite":
            with _sqlite_lock(engine):
                if _is_current(engine):
                    return False
                with engine.connect() as conn:
                    _run_alembic(conn)
            return True
        with engine.connect() as conn, _postgres_lock(conn):
            if current_revision(conn) == HEAD:
                conn.commit()
                return False
            conn.commit()
            _run_alembic(conn)
        return True
    except (OperationalError, ProgrammingError) as exc:
        url = engine.url.render_as_string(hide_password=True)
        raise StoreUnavailableError(
            f"Could not prepare the metadata store at {url}: {str(exc.orig).strip()}", uri=url
        ) from exc
