"""A live ``loopml server`` on 127.0.0.1 for tests: uvicorn in a thread, on a free port.

::

    with live_server(SqlStore(url, BlobStore(folder))) as base_url:
        store = RestStore(base_url)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from loopml.server.app import ServerConfig, create_app
from loopml.storage.protocols import TrackingStore

__all__ = ["live_app", "live_server"]


@contextmanager
def live_server(store: TrackingStore, config: ServerConfig | None = None) -> Iterator[str]:
    """Serve ``store`` on 127.0.0.1 until the block ends; yields the base URL."""
    with live_app(create_app(store, config), lifespan="off") as url:
        yield url


@contextmanager
def live_app(
    app: Any, *, lifespan: Literal["auto", "on", "off"] = "on", timeout: float = 60.0
) -> Iterator[str]:
    """Serve any ASGI ``app`` on 127.0.0.1 until the block ends (its lifespan run, so a
    model server loads its models first); yields the base URL. On exit the server stops
    gracefully: in-flight requests finish and the app's shutdown runs."""
    from loopml.serving.local import serve_in_thread

    with serve_in_thread(app, lifespan=lifespan, timeout=timeout) as url:
        yield url
