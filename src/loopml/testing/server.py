"""A live ``loopml server`` on 127.0.0.1 for tests: uvicorn in a thread, on a free port.

::

    with live_server(SqlStore(url, BlobStore(folder))) as base_url:
        store = RestStore(base_url)
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from loopml.server.app import ServerConfig, create_app
from loopml.storage.protocols import TrackingStore

__all__ = ["live_app", "live_server"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            lifespan=lifespan,
        )
    )
    thread = threading.Thread(target=server.run, name="loopml-live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
