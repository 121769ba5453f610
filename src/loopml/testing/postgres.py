"""A throw-away PostgreSQL database for tests (the server itself must already run)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["DEFAULT_ADMIN_URL", "postgres_available", "temporary_database"]

#: where the tests expect PostgreSQL; override with LOOPML_TEST_POSTGRES_URL
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _admin_url() -> str:
    return os.environ.get("LOOPML_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL)


def postgres_available() -> bool:
    try:
        import psycopg
    except ImportError:
        return False
    try:
        with psycopg.connect(_admin_url(), connect_timeout=3):
            return True
    except psycopg.Error:
        return False


@contextmanager
def temporary_database() -> Iterator[str]:
    """Create a fresh database, yield its SQLAlchemy URL, drop it afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    admin = _admin_url()
    name = f"loopml_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
