"""``loopml server`` as a user runs it: a real process, bound to 127.0.0.1, stopped cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("the server did not become ready in 60 s")


def test_server_serves_a_store_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    store = tmp_path / "store"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loopml.cli",
            "server",
            "--port",
            str(port),
            "--backend-store",
            str(store),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc)
        ready = httpx.get(url + "/ready", timeout=5).json()
        assert ready["ready"] is True
        # a client with only the tracking URI changed writes into the server's store
        client_env = {**env, "LOOPML_TRACKING_URI": url}
        code = (
            "import loopml\n"
            "with loopml.start_run(experiment='remote'):\n"
            "    loopml.log_param('lr', 0.1)\n"
            "    for i in range(100):\n"
            "        loopml.log_metric('loss', 1 / (i + 1), step=i)\n"
        )
        subprocess.run([sys.executable, "-c", code], env=client_env, check=True, timeout=120)
        import loopml

        runs = loopml.Client(str(store)).search_runs(["1"])
        assert len(runs) == 1
        assert len(loopml.Client(str(store)).get_metric_history(runs[0].run_id, "loss")) == 100
        # bound to loopback only, by default: the Host guard also refuses other names
        assert httpx.get(url + "/health", headers={"host": "example.com"}).status_code == 400
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    # a graceful stop: uvicorn finishes in-flight requests, shuts the app down, then exits
    # by the signal it received (-15) or with 0, depending on its version
    log = err.decode()
    assert proc.returncode in (0, -signal.SIGTERM), log[-2000:]
    assert "Application shutdown complete" in log or "Finished server process" in log


def test_server_help_names_the_safe_default() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "loopml.cli", "server", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "127.0.0.1" in out
    assert "--workers" in out


def test_auth_without_an_admin_token_says_how_to_make_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from loopml.cli.server import _warn_without_admin
    from loopml.storage.uris import open_store

    store_uri = str(tmp_path / "store")
    _warn_without_admin(store_uri, None)
    err = capsys.readouterr().err
    assert "no admin token" in err
    assert f"  LOOPML_TRACKING_URI={store_uri} loopml tokens create --name admin" in err
    store = open_store(store_uri, None)
    try:
        store.create_token("boss", "admin")
    finally:
        store.close()
    _warn_without_admin(store_uri, None)
    assert capsys.readouterr().err == ""
