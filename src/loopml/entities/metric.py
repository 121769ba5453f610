from __future__ import annotations

from typing import NamedTuple


class Metric(NamedTuple):
    """One point of a metric's history. ``value`` may be NaN or ±inf; ``timestamp`` is in ms."""

    key: str
    value: float
    timestamp: int
    step: int


#: A metric point as stored: (run_id, key, step, timestamp, value, is_nan), NaN stored as
#: value 0.0 with is_nan True. The tracking client builds these while validating each point.
MetricRow = tuple[str, str, int, int, float, bool]
