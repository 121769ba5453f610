from __future__ import annotations

from typing import NamedTuple


class Metric(NamedTuple):
    """One point of a metric's history. ``value`` may be NaN or ±inf; ``timestamp`` is in ms."""

    key: str
    value: float
    timestamp: int
    step: int
