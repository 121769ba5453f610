"""What benchmarks/monitoring.py measures around one drift check, in any interpreter.

Standard library only: the Evidently and NannyML workers import it from their own
virtualenvs. ``Meter`` records wall time, CPU time (every thread of the process, plus any child
processes) and the peak resident memory above what the process held when it started (after the
input tables were loaded). The peak is the kernel's high-water mark (``VmHWM``), reset at the
start through ``/proc/self/clear_refs``; where that is not allowed, a thread samples ``VmRSS``
every 2 ms instead.
"""

from __future__ import annotations

import gc
import os
import resource
import threading
import time
from typing import Any

__all__ = ["Meter"]


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class Meter:
    """``with Meter() as m: work()``; then ``m.result()``."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None
        self._sampled = 0
        self.wall = self.cpu = 0.0
        self.baseline_kib = self.peak_kib = 0
        self.peak_method = "VmHWM"

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self._sampled = max(self._sampled, _status_kib("VmRSS") or 0)

    def __enter__(self) -> Meter:
        gc.collect()
        self.baseline_kib = _status_kib("VmRSS") or 0
        if not _reset_peak() or _status_kib("VmHWM") is None:
            self.peak_method = "sampled VmRSS"
            self._sampled = self.baseline_kib
            self._sampler = threading.Thread(target=self._sample, daemon=True)
            self._sampler.start()
        self._cpu0 = _cpu()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._t0
        self.cpu = _cpu() - self._cpu0
        if self._sampler is not None:
            self._stop.set()
            self._sampler.join()
            self.peak_kib = max(self._sampled, _status_kib("VmRSS") or 0)
        else:
            self.peak_kib = _status_kib("VmHWM") or 0

    def result(self) -> dict[str, Any]:
        return {
            "seconds": self.wall,
            "cpu_seconds": self.cpu,
            "baseline_bytes": self.baseline_kib * 1024,
            "peak_extra_bytes": max(self.peak_kib - self.baseline_kib, 0) * 1024,
            "peak_method": self.peak_method,
            "pid": os.getpid(),
        }
