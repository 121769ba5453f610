"""Run a server in this process, in a background thread (notebooks, the quickstart, tests)::

with serve_in_thread(build_app(config)) as url:
    httpx.post(url + "/predict/churn", json=records)
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

__all__ = ["free_port", "serve_in_thread"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_in_thread(
    app: Any,
    *,
    port: int | None = None,
    lifespan: Literal["auto", "on", "off"] = "on",
    timeout: float = 60.0,
) -> Iterator[str]:
    """Serve the ASGI ``app`` on 127.0.0.1 (a free port unless ``port``) until the block
    ends; yields the base URL once the app has started (for the model server: once its
    models are loaded). On exit the server stops gracefully: in-flight requests finish and
    the app's shutdown runs (the prediction log is written)."""
    import uvicorn

    port = port or free_port()
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
    thread = threading.Thread(target=server.run, name="loopml-server-thread", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the server on 127.0.0.1:{port} did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)
