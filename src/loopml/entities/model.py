"""Registered models, their versions, aliases and the events of the registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["ModelVersion", "ModelVersionStatus", "RegisteredModel", "RegistryEvent"]


class ModelVersionStatus(StrEnum):
    """A version is ``READY`` until archived; an archived version keeps its number and
    package but holds no alias."""

    READY = "READY"
    ARCHIVED = "ARCHIVED"


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    """A named series of model versions. ``aliases`` maps each alias to its version."""

    name: str
    description: str
    creation_time: int
    last_update_time: int
    latest_version: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One immutable version of a registered model.

    ``package_digest`` names the model package's manifest blob (every file's digest), so the
    version always loads the same bytes. ``run_id`` is the run that produced it (lineage: the
    run's dataset inputs and code version); ``source`` is the URI it was registered from.
    """

    name: str
    version: int
    package_digest: str
    creation_time: int
    last_update_time: int
    status: ModelVersionStatus = ModelVersionStatus.READY
    run_id: str | None = None
    source: str = ""
    description: str = ""
    flavor: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    @property
    def uri(self) -> str:
        """``models:/name/version``: loads this exact version anywhere loopml runs."""
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True, slots=True)
class RegistryEvent:
    """Something that happened to a registered model: a version created, an alias moved,
    a version archived... ``actor`` is who did it (user or token name), ``payload`` the
    details (for an alias move: alias, version, previous version and reason)."""

    time: int
    kind: str
    name: str
    actor: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
