"""``to_wire`` decides how to encode each type once; its output is that of the plain recursive
definition below, for every kind of value an entity holds."""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from typing import Any, NamedTuple

import pytest

from loopml.entities import Metric, Run, RunData, RunInfo, RunStatus, SourceInfo
from loopml.storage.rest.wire import from_wire, to_wire


def reference(value: Any) -> Any:
    """The definition: what ``to_wire`` returned before it cached its decisions per type."""
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: reference(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {str(k): reference(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [reference(v) for v in value]
    if hasattr(value, "_asdict"):
        return reference(tuple(value))
    return value


class Level(enum.IntEnum):
    LOW = 1


class Point(NamedTuple):
    x: float
    y: Any


class Real(float):
    pass


@dataclasses.dataclass(frozen=True)
class Holder:
    inner: Any
    items: list[Any] = dataclasses.field(default_factory=list)


class AsDict:
    def _asdict(self) -> dict[str, int]:  # not a tuple: encoded as a tuple of its items
        return {}

    def __iter__(self) -> Any:
        return iter([1.5, math.inf])


def _run() -> Run:
    info = RunInfo(
        run_id="a" * 32,
        experiment_id="7",
        run_name="wide",
        status=RunStatus.FAILED,
        start_time=1,
        end_time=None,
        parent_run_id=None,
        source=SourceInfo(user="ann", git_dirty=True, packages={"numpy": "2.0"}),
        error="boom",
    )
    metrics = {"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "x": 0.5, "zero": -0.0}
    latest = {k: Metric(k, v, 10, 2) for k, v in metrics.items()}
    return Run(info, RunData({"p": "1", "e": ""}, metrics, {"t": "v"}, latest))


VALUES = [
    None,
    True,
    0,
    -(2**70),
    "text",
    1.25,
    math.nan,
    -math.inf,
    Real(2.5),
    Real(math.inf),
    Level.LOW,
    RunStatus.RUNNING,
    Point(math.nan, [Level.LOW, {"k": Real(math.nan)}]),
    {1: math.inf, "b": (True, None), (1, 2): [Point(1.0, "y")]},
    [[], (), {}, [math.nan]],
    Holder(Holder(math.inf, [Level.LOW]), [_run(), None]),
    Holder,  # a dataclass class is no instance: itself
    AsDict(),
    _run(),
    [_run(), _run()],
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_to_wire_is_the_recursive_definition(value: Any) -> None:
    got, want = to_wire(value), reference(value)
    assert repr(got) == repr(want)  # the same types too (a float subclass stays itself)
    if not isinstance(value, type):
        assert json.dumps(got, allow_nan=False) == json.dumps(want, allow_nan=False)


def test_a_run_round_trips() -> None:
    run = _run()
    back = from_wire(Run, json.loads(json.dumps(to_wire(run))))
    assert to_wire(back) == to_wire(run)
    assert back.info == run.info
    assert math.isnan(back.data.metrics["nan"])
