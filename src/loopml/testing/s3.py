"""A throw-away S3 endpoint for tests: moto's standalone server in a subprocess.

Example::

    from loopml.testing.s3 import moto_s3_server

    with moto_s3_server() as server:
        server.create_bucket("my-bucket")
        store = BlobStore("s3://my-bucket/blobs", storage_options=server.storage_options)

The server listens on ``127.0.0.1`` only, keeps everything in memory and is terminated when
the ``with`` block ends. It needs ``moto[server]`` (and ``s3fs`` for :meth:`create_bucket`).
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from loopml.errors import MissingDependencyError

__all__ = ["S3Server", "moto_s3_server"]

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
REGION = "us-east-1"
DUMMY_KEY = "testing"
DUMMY_SECRET = "testing"  # noqa: S105 - a dummy credential the moto server accepts
_POLL_SECONDS = 0.1
_STOP_SECONDS = 5.0


@dataclass(frozen=True)
class S3Server:
    """A running moto S3 server."""

    endpoint_url: str
    """The server's base URL, e.g. ``http://127.0.0.1:50123``."""

    @property
    def storage_options(self) -> dict[str, Any]:
        """Options for ``s3fs.S3FileSystem`` (or fsspec) pointing at this server; a new dict."""
        return {
            "key": DUMMY_KEY,
            "secret": DUMMY_SECRET,
            "client_kwargs": {"endpoint_url": self.endpoint_url, "region_name": REGION},
        }

    def create_bucket(self, name: str) -> None:
        """Create the bucket ``name`` on this server."""
        try:
            import s3fs
        except ImportError as exc:
            raise MissingDependencyError.for_extra("s3fs", "s3", "Creating a test bucket") from exc
        fs = s3fs.S3FileSystem(skip_instance_cache=True, **self.storage_options)
        # Not ``fs.mkdir``: it sends ``LocationConstraint=us-east-1``, which S3 refuses.
        fs.call_s3("create_bucket", Bucket=name)
        fs.invalidate_cache()
        logger.debug("Created bucket %s on %s", name, self.endpoint_url)


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _answers(port: int) -> bool:
    """True if an HTTP server answers on ``port``."""
    conn = http.client.HTTPConnection(HOST, port, timeout=1)
    try:
        conn.request("GET", "/")
        conn.getresponse().read()
    except OSError:
        return False
    finally:
        conn.close()
    return True


def _log_tail(log: IO[bytes], limit: int = 2000) -> str:
    """The last ``limit`` characters the server wrote."""
    log.flush()
    log.seek(0)
    return log.read().decode("utf-8", errors="replace")[-limit:]


def _wait_until_ready(
    proc: subprocess.Popen[bytes], port: int, log: IO[bytes], limit: float
) -> None:
    """Block until the server answers; raise ``RuntimeError`` if it dies or takes too long."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto server exited with code {proc.returncode}:\n{_log_tail(log)}")
        if _answers(port):
            return
        time.sleep(_POLL_SECONDS)
    raise RuntimeError(f"moto server did not answer within {limit:.0f} s:\n{_log_tail(log)}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the server process, killing it if it does not stop in time."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def moto_s3_server(*, start_timeout: float = 20.0) -> Iterator[S3Server]:
    """Run moto's S3 server on a free port of 127.0.0.1 for the length of a ``with`` block.

    Args:
        start_timeout: Seconds to wait for the server to answer before giving up.

    Yields:
        The running server's :class:`S3Server`.

    Raises:
        RuntimeError: The server exited or did not answer within ``start_timeout``.
    """
    port = _free_port()
    command = [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            _wait_until_ready(proc, port, log, start_timeout)
            logger.debug("moto S3 server (pid %d) is up on port %d", proc.pid, port)
            yield S3Server(endpoint_url=f"http://{HOST}:{port}")
        finally:
            _stop(proc)
