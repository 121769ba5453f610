"""A real Open Inference Protocol client (NVIDIA's ``tritonclient[http]``) against the server;
bearer-token auth with the tracking store's tokens; ``loopml serve`` as a real process,
stopped with SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from tests.serving.conftest import Registered

from loopml.serving.app import create_app
from loopml.serving.config import parse_config
from loopml.storage.uris import open_store
from loopml.testing.server import live_app


def test_tritonclient_talks_to_the_server(lr: LogisticRegression, registered: Registered) -> None:
    http = pytest.importorskip("tritonclient.http")
    app = create_app(parse_config({"models": [{"name": "cancer", "uri": "models:/cancer/1"}]}))
    frame = registered.features.iloc[:6]
    with live_app(app) as url:
        client = http.InferenceServerClient(url=url.removeprefix("http://"))
        try:
            assert client.is_server_live()
            assert client.is_server_ready()
            assert client.is_model_ready("cancer")
            metadata = client.get_model_metadata("cancer")
            assert metadata["name"] == "cancer"
            assert len(metadata["inputs"]) == 30
            # one tensor holding all 30 columns
            data = frame.to_numpy().astype(np.float32)
            tensor = http.InferInput("input", list(data.shape), "FP32")
            tensor.set_data_from_numpy(data, binary_data=False)
            wanted = http.InferRequestedOutput("predict", binary_data=False)
            result = client.infer("cancer", [tensor], outputs=[wanted])
            np.testing.assert_array_equal(result.as_numpy("predict"), lr.predict(frame))
            # one input per column
            columns = []
            for name in frame.columns:
                column = http.InferInput(name, [len(frame)], "FP64")
                column.set_data_from_numpy(frame[name].to_numpy(), binary_data=False)
                columns.append(column)
            by_column = client.infer("cancer", columns, model_version="1")
            np.testing.assert_array_equal(by_column.as_numpy("predict"), lr.predict(frame))
            assert by_column.get_response()["model_version"] == "1"
        finally:
            client.close()


def test_auth_needs_a_token_of_the_store(lr: LogisticRegression, registered: Registered) -> None:
    store = open_store(registered.store)
    _reader, reader = store.create_token("reader", "reader")  # type: ignore[attr-defined]
    _writer, writer = store.create_token("writer", "writer")  # type: ignore[attr-defined]
    _other, other = store.create_token(  # type: ignore[attr-defined]
        "other-model", "writer", scopes={"models": ["churn"]}
    )
    _gone, gone = store.create_token("gone", "reader")  # type: ignore[attr-defined]
    store.revoke_token("gone")  # type: ignore[attr-defined]
    app = create_app(
        parse_config({"models": [{"name": "cancer", "uri": "models:/cancer/1"}], "auth": True}),
        store=store,
    )
    body = {"data": registered.features.iloc[:1].to_numpy().tolist()}
    feedback = {"request_id": "abc", "label": 1}
    try:
        with live_app(app) as url, httpx.Client(base_url=url) as client:

            def post(path: str, json: object, token: str | None) -> httpx.Response:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                return client.post(path, json=json, headers=headers)

            refused = post("/predict/cancer", body, None)
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"] == "Bearer"
            assert post("/predict/cancer", body, "lml_nonsense").status_code == 401
            assert post("/predict/cancer", body, gone).status_code == 401
            assert post("/predict/cancer", body, reader).status_code == 200
            assert post("/v2/models/cancer/infer", {"inputs": []}, None).status_code == 401
            assert post("/invocations", {"instances": body["data"]}, writer).status_code == 200
            scoped = post("/predict/cancer", body, other)
            assert scoped.status_code == 403
            assert "may not use model 'cancer'" in scoped.json()["error"]
            assert post("/feedback/cancer", feedback, reader).status_code == 403
            # health, readiness and metrics stay open for probes and scrapers
            assert client.get("/v2/health/ready").status_code == 200
            assert client.get("/metrics").status_code == 200
            metrics = client.get("/metrics").text
            assert 'kind="unauthorized"' in metrics
    finally:
        store.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_loopml_serve_as_a_process_binds_localhost_and_stops_gracefully(
    lr: LogisticRegression, registered: Registered, tmp_path: Path
) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["LOOPML_TRACKING_URI"] = registered.store
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loopml.cli",
            "serve",
            "models:/cancer@champion",
            "--port",
            str(port),
            "--no-prediction-log",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, process.communicate()
            try:
                if httpx.get(url + "/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.1)
        rows = registered.features.iloc[:4].to_numpy().tolist()
        answer = httpx.post(url + "/predict/cancer", json={"data": rows})
        assert answer.json()["predictions"] == lr.predict(registered.features.iloc[:4]).tolist()
        listening = {
            c.laddr.ip
            for c in __import__("psutil").Process(process.pid).net_connections()
            if c.status == "LISTEN"
        }
        assert listening == {"127.0.0.1"}
    finally:
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=60)
    assert process.returncode in (0, -signal.SIGTERM), err.decode()[-2000:]
    assert b"Traceback" not in err, err.decode()[-2000:]


def test_serve_refuses_a_uri_and_a_config_together_or_neither(tmp_path: Path) -> None:
    for args in ([], ["models:/a/1", "--config", str(tmp_path / "x.yaml")]):
        done = subprocess.run(
            [sys.executable, "-m", "loopml.cli", "serve", *args],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 2, done.stderr
        assert "MODEL_URI or --config" in done.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  - name: a\n    uri: models:/a/1\n    max_batch_size: -3\n")
    done = subprocess.run(
        [sys.executable, "-m", "loopml.cli", "serve", "--config", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "models.0.max_batch_size" in done.stderr


@pytest.mark.parametrize(("preset", "expected"), [(None, "system"), ("mimalloc", "mimalloc")])
def test_serve_has_arrow_use_the_system_allocator(preset: str | None, expected: str) -> None:
    """The server's Arrow allocations (the prediction log's segments) use the system
    allocator unless ARROW_DEFAULT_MEMORY_POOL chose one: set before anything imports
    pyarrow, which reads it once."""
    script = (
        "import sys, uvicorn\n"
        "def run(*args, **kwargs):\n"
        "    import loopml.serving.factory, pyarrow\n"
        "    print(pyarrow.default_memory_pool().backend_name)\n"
        "uvicorn.run = run\n"
        "from loopml.cli import main\n"
        "sys.argv = ['loopml', 'serve', 'models:/cancer@champion']\n"
        "main()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if preset is not None:
        env["ARROW_DEFAULT_MEMORY_POOL"] = preset
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == expected
