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

from loopml.server.app import ServerConfig, create_app
from loopml.storage.protocols import TrackingStore

__all__ = ["live_server"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_server(store: TrackingStore, config: ServerConfig | None = None) -> Iterator[str]:
    """Serve ``store`` on 127.0.0.1 until the block ends; yields the base URL."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(store, config),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
    )
    thread = threading.Thread(target=server.run, name="loopml-live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
