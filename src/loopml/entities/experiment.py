from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class LifecycleStage(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"


@dataclass(frozen=True, slots=True)
class Experiment:
    """A named group of runs. Names are unique among all experiments, archived ones too."""

    experiment_id: str
    name: str
    description: str = ""
    lifecycle_stage: LifecycleStage = LifecycleStage.ACTIVE
    creation_time: int = 0
    last_update_time: int = 0
    tags: dict[str, str] = field(default_factory=dict)
