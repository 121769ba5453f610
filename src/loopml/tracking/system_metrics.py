"""Sample CPU, memory and (with NVIDIA's NVML bindings installed) GPU use as run metrics."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["SystemMetricsSampler", "sample_system_metrics"]

_log = logging.getLogger(__name__)


def _gpu_metrics() -> dict[str, float]:
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        return {}
    try:
        pynvml.nvmlInit()
    except Exception:
        return {}
    found: dict[str, float] = {}
    try:
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            util = pynvml.nvmlDeviceGetUtilizationRates(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            found[f"system/gpu_{index}_utilization_percent"] = float(util.gpu)
            found[f"system/gpu_{index}_memory_used_mb"] = memory.used / 2**20
    except Exception as exc:
        _log.debug("GPU metrics unavailable: %s", exc)
    return found


def sample_system_metrics() -> dict[str, float]:
    """One sample: CPU %, memory % and MB used, this process's RSS, and GPU use if present."""
    import psutil

    memory = psutil.virtual_memory()
    values = {
        "system/cpu_percent": float(psutil.cpu_percent(interval=None)),
        "system/memory_percent": float(memory.percent),
        "system/memory_used_mb": (memory.total - memory.available) / 2**20,
        "system/process_rss_mb": psutil.Process().memory_info().rss / 2**20,
    }
    values.update(_gpu_metrics())
    return values


class SystemMetricsSampler:
    """Calls ``log(values, step)`` with a fresh sample every ``interval`` seconds until stopped."""

    def __init__(self, log: Callable[[dict[str, float], int], Any], interval: float) -> None:
        self._log = log
        self._interval = interval
        self._stop = threading.Event()
        self._step = 0
        self._thread = threading.Thread(
            target=self._loop, name="loopml-system-metrics", daemon=True
        )

    def start(self) -> SystemMetricsSampler:
        import psutil

        psutil.cpu_percent(interval=None)  # the first call only primes the counter
        self._thread.start()
        return self

    def _sample(self) -> None:
        try:
            self._log(sample_system_metrics(), self._step)
        except Exception as exc:
            _log.warning("system metrics sample failed: %s", exc)
        self._step += 1

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def stop(self) -> None:
        """Take one last sample and stop."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(timeout=5)
        self._sample()
