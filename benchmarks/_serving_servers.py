"""The servers of benchmarks/serving.py: the peers' virtualenvs, each server's command and
requests, and one server process at a time (cold start, resident memory, stop).

Standard library plus psutil (a loopml dependency) for the process tree's memory and CPU.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import VENVS_DIR, WorkerError, log, venv_python

HOST = "127.0.0.1"
READY_TIMEOUT_S = 240.0
STOP_TIMEOUT_S = 15.0
RSS_INTERVAL_S = 0.1
MB = 1_000_000

# the peers' virtualenvs under benchmarks/.venvs (MLflow shares benchmarks/.venvs/mlflow with
# the other benchmarks); scikit-learn is pinned to this interpreter's version in each of them
BENTOML_VERSION = "1.4.40"
MLSERVER_VERSION = "1.7.1"
PEER_REQUIREMENTS: dict[str, list[str]] = {
    "bentoml": [f"bentoml=={BENTOML_VERSION}"],
    # MLServer 1.7.1 does not start with uvloop 0.22 (its server setup breaks): keep it below
    "mlserver": [
        f"mlserver=={MLSERVER_VERSION}",
        f"mlserver-sklearn=={MLSERVER_VERSION}",
        "uvloop<0.22",
    ],
}
STAMP = ".serving-requirements.json"


def ensure_peer_venv(tool: str, sklearn_version: str) -> Path:
    """The python of ``benchmarks/.venvs/serving-<tool>`` with the tool's requirements and
    ``scikit-learn==sklearn_version``; created and installed on first use, reinstalled when the
    requirements change. WorkerError when pip fails."""
    venv = VENVS_DIR / f"serving-{tool}"
    python = venv_python(venv)
    wanted = [*PEER_REQUIREMENTS[tool], f"scikit-learn=={sklearn_version}"]
    stamp = venv / STAMP
    if python.exists() and stamp.exists():
        try:
            if json.loads(stamp.read_text()) == wanted:
                return python
        except (OSError, json.JSONDecodeError):
            pass
    if not python.exists():
        log(f"creating the virtualenv {venv}")
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    log(f"installing {' '.join(wanted)} into {venv} (a few minutes the first time)")
    done = subprocess.run([str(python), "-m", "pip", "install", "--quiet", *wanted], check=False)
    if done.returncode != 0:
        raise WorkerError(f"pip could not install {' '.join(wanted)} into {venv}")
    stamp.write_text(json.dumps(wanted))
    return python


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


# -- what each server is sent ----------------------------------------------------------------------


def _row_text(row: Sequence[float]) -> str:
    return json.dumps([float(v) for v in row])


def body_for(protocol: str, kind: str, row: Sequence[float]) -> str:
    """One single-row request body in ``protocol``; the same row for every server."""
    values = _row_text(row)
    width = len(row)
    if protocol == "loopml":  # POST /predict/{name}: a 2-D array in the signature's order
        return f'{{"data": [{values}]}}'
    if protocol in ("v2", "mlserver"):  # Open Inference Protocol, one FP64 tensor
        name = "input" if protocol == "v2" else "input-0"
        return (
            f'{{"inputs": [{{"name": "{name}", "shape": [1, {width}], '
            f'"datatype": "FP64", "data": {values}}}]}}'
        )
    if protocol == "mlflow":  # MLflow's scoring protocol, tensor input
        return f'{{"inputs": [{values}]}}'
    if protocol == "bentoml":  # the generated service's `input: np.ndarray`
        return f'{{"input": [{values}]}}'
    raise ValueError(f"unknown protocol {protocol!r}")


def path_for(protocol: str, kind: str) -> str:
    return {
        "loopml": f"/predict/{kind}",
        "v2": f"/v2/models/{kind}/infer",
        "mlserver": f"/v2/models/{kind}/infer",
        "mlflow": "/invocations",
        "bentoml": "/predict",
    }[protocol]


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [x for item in value for x in _flatten(item)]
    return [value]


def predictions_in(payload: Any) -> list[int] | None:
    """The predicted labels in a response, whichever protocol: a bare list (BentoML),
    ``{"predictions": [...]}`` (MLflow, loopml) or ``{"outputs": [{"data": [...]}]}`` (V2)."""
    found: Any = None
    if isinstance(payload, list):
        found = payload
    elif isinstance(payload, dict):
        if "predictions" in payload:
            found = payload["predictions"]
        elif payload.get("outputs"):
            first = payload["outputs"][0]
            found = first.get("data") if isinstance(first, dict) else None
    if found is None:
        return None
    try:
        return [round(float(v)) for v in _flatten(found)]
    except (TypeError, ValueError):
        return None


def post(port: int, path: str, body: str, timeout: float = 10.0) -> tuple[int, bytes]:
    """One POST on a fresh connection; (status, body). OSError when nothing answers."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def get(port: int, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
    """One GET on a fresh connection; (status, body). OSError when nothing answers."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


# -- one server process ----------------------------------------------------------------------------


@dataclass
class Launch:
    """How to start one server: the command, its environment additions and folder."""

    command: list[str]
    env: dict[str, str]
    cwd: Path
    port: int
    path: str
    protocol: str
    extra_ports: list[int] = field(default_factory=list)


class RssSampler:
    """The peak resident memory of a process tree, sampled every ``RSS_INTERVAL_S``: of the
    whole tree and of its largest process."""

    def __init__(self, processes: Callable[[], list[Any]]) -> None:
        self._processes = processes
        self.peak_tree = 0
        self.peak_single = 0
        self.most_processes = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        import psutil

        while not self._stop.is_set():
            total, largest, count = 0, 0, 0
            for proc in self._processes():
                try:
                    rss = proc.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                largest = max(largest, rss)
                count += 1
            if count:
                self.samples += 1
                self.peak_tree = max(self.peak_tree, total)
                self.peak_single = max(self.peak_single, largest)
                self.most_processes = max(self.most_processes, count)
            self._stop.wait(RSS_INTERVAL_S)


class ServerProcess:
    """One server (and its children) started in its own process group, pinned with ``pin``."""

    def __init__(self, name: str, launch: Launch, pin: Sequence[str], log_path: Path) -> None:
        self.name = name
        self.launch = launch
        self.pin = list(pin)
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.known: dict[int, Any] = {}  # pid -> psutil.Process, checked against reuse
        self.sampler: RssSampler | None = None

    def start(self, first_body: str) -> float:
        """Launch the server and POST ``first_body`` until it answers 200: the cold start,
        from the command to the first successful answer, in seconds."""
        env = {**os.environ, **self.launch.env}
        begin = time.perf_counter()
        with open(self.log_path, "wb") as sink:
            self.process = subprocess.Popen(
                [*self.pin, *self.launch.command],
                cwd=self.launch.cwd,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, stopped as one
            )
        self.sampler = RssSampler(self.processes)
        self.sampler.start()
        last = "no answer"
        while True:
            if self.process.poll() is not None:
                raise WorkerError(
                    f"{self.name} exited with {self.process.returncode} before answering "
                    f"{self.launch.path}; its log ends:\n{self.log_tail()}"
                )
            try:
                status, payload = post(self.launch.port, self.launch.path, first_body)
                if status == 200:
                    break
                last = f"{status}: {payload[:200]!r}"
            except (OSError, http.client.HTTPException) as exc:
                last = f"{type(exc).__name__}: {exc}"
            if time.perf_counter() - begin > READY_TIMEOUT_S:
                raise WorkerError(
                    f"{self.name} did not answer {self.launch.path} with 200 within "
                    f"{READY_TIMEOUT_S:.0f}s (last: {last}); its log ends:\n{self.log_tail()}"
                )
            time.sleep(0.02)
        cold = time.perf_counter() - begin
        self.processes()
        return cold

    def processes(self) -> list[Any]:
        """The server's process tree (psutil)."""
        import psutil

        if self.process is None:
            return []
        try:
            root = psutil.Process(self.process.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        for proc in tree:  # remembered, so that stop() finds children that left the group
            self.known.setdefault(proc.pid, proc)
        return tree

    def cpu_seconds(self) -> float:
        import psutil

        total = 0.0
        for proc in self.processes():
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        return total

    def settle(self, limit_s: float = 20.0) -> float:
        """Wait until the server's CPU goes quiet (under 10% of a core over 0.5 s; at most
        ``limit_s``), e.g. while it still works off the requests of a finished run."""
        begin = time.perf_counter()
        before = self.cpu_seconds()
        while time.perf_counter() - begin < limit_s:
            time.sleep(0.5)
            now = self.cpu_seconds()
            if now - before < 0.05:
                break
            before = now
        return time.perf_counter() - begin

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def memory(self) -> dict[str, Any]:
        """The memory figures so far, in MB: the peaks of the whole tree and of its largest
        process, and the most processes it had at once."""
        if self.sampler is None:
            return {}
        return {
            "peak_rss_tree_mb": self.sampler.peak_tree / MB,
            "peak_rss_process_mb": self.sampler.peak_single / MB,
            "processes": self.sampler.most_processes,
            "rss_samples": self.sampler.samples,
        }

    def stop(self) -> dict[str, Any]:
        """Stop the process group (SIGTERM, then SIGKILL) and any process of its tree that left
        it; the memory figures (see :meth:`memory`)."""
        if self.sampler is not None:
            self.sampler.stop()
        figures = self.memory()
        if self.process is None:
            return figures
        self.processes()
        group = self.process.pid
        for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(group, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        _reap([p for pid, p in self.known.items() if pid != group])
        self.process = None
        return figures


def _reap(processes: list[Any]) -> None:
    """Terminate, then kill, whichever of a stopped server's own processes still run (psutil
    refuses to signal a pid that another process has taken since)."""
    import psutil

    alive = []
    for proc in processes:
        try:
            proc.terminate()
            alive.append(proc)
        except psutil.NoSuchProcess:
            continue
    _, still = psutil.wait_procs(alive, timeout=10)
    for proc in still:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            continue
