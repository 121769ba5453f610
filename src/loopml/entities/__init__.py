"""Frozen dataclasses that every layer passes around (no I/O, no SQL, no HTTP)."""

from loopml.entities.artifact import ArtifactInfo
from loopml.entities.dataset import Dataset, DatasetInput, DatasetKind, DatasetVersionInfo
from loopml.entities.experiment import Experiment, LifecycleStage
from loopml.entities.metric import Metric, MetricRow
from loopml.entities.model import (
    ModelVersion,
    ModelVersionStatus,
    RegisteredModel,
    RegistryEvent,
)
from loopml.entities.monitor import Monitor, MonitorEvent, MonitorResult, MonitorStatus
from loopml.entities.paging import PagedList
from loopml.entities.prediction import PredictionLogKind, PredictionSegment
from loopml.entities.run import Run, RunData, RunInfo, RunStatus, SourceInfo
from loopml.entities.token import Token, TokenRole, TokenScopes

__all__ = [
    "ArtifactInfo",
    "Dataset",
    "DatasetInput",
    "DatasetKind",
    "DatasetVersionInfo",
    "Experiment",
    "LifecycleStage",
    "Metric",
    "MetricRow",
    "ModelVersion",
    "ModelVersionStatus",
    "Monitor",
    "MonitorEvent",
    "MonitorResult",
    "MonitorStatus",
    "PagedList",
    "PredictionLogKind",
    "PredictionSegment",
    "RegisteredModel",
    "RegistryEvent",
    "Run",
    "RunData",
    "RunInfo",
    "RunStatus",
    "SourceInfo",
    "Token",
    "TokenRole",
    "TokenScopes",
]
