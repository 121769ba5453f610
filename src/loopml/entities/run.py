from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from loopml.entities.metric import Metric


class RunStatus(StrEnum):
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def is_terminal(self) -> bool:
        return self is not RunStatus.RUNNING


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """Where a run's code came from, captured when the run starts."""

    user: str | None = None
    host: str | None = None
    entry_point: str | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    python_version: str | None = None
    packages: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RunInfo:
    run_id: str
    experiment_id: str
    run_name: str
    status: RunStatus
    start_time: int
    end_time: int | None = None
    parent_run_id: str | None = None
    source: SourceInfo = field(default_factory=SourceInfo)
    error: str | None = None

    @property
    def user(self) -> str | None:
        return self.source.user


@dataclass(frozen=True, slots=True)
class RunData:
    """What was logged to a run: params, the latest value of each metric, and tags."""

    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    latest_metrics: dict[str, Metric] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Run:
    info: RunInfo
    data: RunData = field(default_factory=RunData)

    @property
    def run_id(self) -> str:
        return self.info.run_id
