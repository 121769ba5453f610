"""Segments of the prediction log: Parquet blobs of logged predictions or feedback."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["PredictionLogKind", "PredictionSegment"]


class PredictionLogKind(StrEnum):
    """What a segment holds: the requests a model answered, or ground-truth labels for them."""

    PREDICTIONS = "predictions"
    FEEDBACK = "feedback"


@dataclass(frozen=True, slots=True)
class PredictionSegment:
    """One immutable Parquet segment of a model's prediction log, as the metadata store
    records it.

    ``digest`` names the Parquet blob (``size`` bytes) holding ``row_count`` rows whose
    timestamps (milliseconds since the epoch) run from ``start_time`` to ``end_time``, both
    inclusive. ``model_version`` is ``None`` for a model served without a registry version
    (and usually for feedback, which arrives by request id).
    """

    segment_id: str
    model_name: str
    model_version: int | None
    kind: PredictionLogKind
    start_time: int
    end_time: int
    row_count: int
    digest: str
    size: int
    created_time: int
