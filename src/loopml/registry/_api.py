"""The registry API: register model packages as versions, move aliases, read history and
lineage. Every function is one call into the store (local SQL, or later the server), so the
CLI and the REST API stay thin.

::

    mv = loopml.registry.register(info.uri, name="churn")          # version 1
    loopml.registry.set_alias("churn", "champion", mv.version, reason="first model")
    loopml.registry.history("churn")                                # every alias move, who/when/why
    loopml.registry.lineage("churn", 1)                             # run, datasets, code version
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from loopml.entities import (
    DatasetInput,
    ModelVersion,
    ModelVersionStatus,
    RegisteredModel,
    RegistryEvent,
)
from loopml.errors import InvalidArgumentError, ModelNotFoundError
from loopml.models import resolve_package
from loopml.storage.protocols import TrackingStore
from loopml.storage.uris import open_store
from loopml.storage.validation import validate_model_name

__all__ = [
    "Lineage",
    "archive_version",
    "default_actor",
    "delete_alias",
    "delete_model",
    "delete_version",
    "get_model",
    "get_version",
    "history",
    "lineage",
    "list_models",
    "list_versions",
    "register",
    "restore_version",
    "set_alias",
]

Uri = str | os.PathLike[str] | None


def _store(tracking_uri: Uri) -> TrackingStore:
    return open_store(tracking_uri)


def default_actor() -> str:
    """Who is making a change: ``LOOPML_ACTOR`` if set (a CI job's name, say), else the
    operating-system user. The tracking server records the token's name instead."""
    actor = os.environ.get("LOOPML_ACTOR")
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no user name in a minimal container
        return "unknown"


def _run_of(uri: str) -> str | None:
    if uri.startswith("runs:/"):
        return uri.removeprefix("runs:/").split("/", 1)[0] or None
    return None


def register(
    model_uri: str,
    name: str,
    *,
    description: str = "",
    tags: Mapping[str, Any] | None = None,
    actor: str | None = None,
    tracking_uri: Uri = None,
) -> ModelVersion:
    """Register the model package at ``model_uri`` as the next version of ``name``.

    ``model_uri`` is what :func:`loopml.models.log_model` returned (``runs:/RUN_ID/model``)
    or another version (``models:/other/3``, ``models:/other@champion``). The registered
    model is created on first use. The version records the package digest (so it always
    loads the same bytes), the run that produced it and therefore that run's datasets and
    code version.
    """
    if not isinstance(model_uri, str):
        raise InvalidArgumentError(
            f"model_uri must be a string such as 'runs:/<run id>/model'. Got {model_uri!r}.",
            field="model_uri",
        )
    name = validate_model_name(name)
    store = _store(tracking_uri)
    digest = resolve_package(model_uri, tracking_uri=tracking_uri)
    manifest = json.loads(store.blobs.read_bytes(digest))
    run_id = _run_of(model_uri) or manifest.get("run_id")
    return store.create_model_version(
        name,
        package_digest=digest,
        run_id=run_id,
        source=model_uri,
        description=description,
        flavor=str(manifest.get("flavor", "")),
        tags=tags,
        actor=actor or default_actor(),
    )


def get_model(name: str, *, tracking_uri: Uri = None) -> RegisteredModel:
    return _store(tracking_uri).get_registered_model(name)


def list_models(*, tracking_uri: Uri = None) -> list[RegisteredModel]:
    return _store(tracking_uri).list_registered_models()


def get_version(name: str, version: int | str, *, tracking_uri: Uri = None) -> ModelVersion:
    """A version by number (``3``, ``"3"``, ``"v3"``), by alias (``"champion"``) or the
    newest READY one (``"latest"``)."""
    store = _store(tracking_uri)
    if isinstance(version, str):
        text = version.strip()
        if text == "latest":
            ready = [
                v for v in store.list_model_versions(name) if v.status is ModelVersionStatus.READY
            ]
            if not ready:
                raise ModelNotFoundError(f"{name!r} has no READY version.", name=name)
            return ready[0]
        digits = text[1:] if text[:1] in ("v", "V") else text
        if not (digits.isascii() and digits.isdigit()):
            return store.get_model_version_by_alias(name, text)
        version = int(digits)
    return store.get_model_version(name, version)


def list_versions(name: str, *, tracking_uri: Uri = None) -> list[ModelVersion]:
    """Every version of ``name``, newest first."""
    return _store(tracking_uri).list_model_versions(name)


def set_alias(
    name: str,
    alias: str,
    version: int,
    *,
    reason: str = "",
    actor: str | None = None,
    tracking_uri: Uri = None,
) -> int | None:
    """Point ``alias`` at ``version`` atomically; returns the version it pointed at before.
    The move is recorded with the actor, the time and the reason."""
    return _store(tracking_uri).set_alias(
        name, alias, version, reason=reason, actor=actor or default_actor()
    )


def delete_alias(
    name: str, alias: str, *, reason: str = "", actor: str | None = None, tracking_uri: Uri = None
) -> int:
    return _store(tracking_uri).delete_alias(
        name, alias, reason=reason, actor=actor or default_actor()
    )


def archive_version(
    name: str,
    version: int,
    *,
    force: bool = False,
    reason: str = "",
    actor: str | None = None,
    tracking_uri: Uri = None,
) -> ModelVersion:
    """Archive a version. Refused while an alias points at it, unless ``force=True``, which
    removes those aliases (recorded as events)."""
    return _store(tracking_uri).set_model_version_status(
        name,
        version,
        ModelVersionStatus.ARCHIVED,
        force=force,
        reason=reason,
        actor=actor or default_actor(),
    )


def restore_version(
    name: str, version: int, *, reason: str = "", actor: str | None = None, tracking_uri: Uri = None
) -> ModelVersion:
    return _store(tracking_uri).set_model_version_status(
        name, version, ModelVersionStatus.READY, reason=reason, actor=actor or default_actor()
    )


def delete_version(
    name: str,
    version: int,
    *,
    force: bool = False,
    reason: str = "",
    actor: str | None = None,
    tracking_uri: Uri = None,
) -> None:
    _store(tracking_uri).delete_model_version(
        name, version, force=force, reason=reason, actor=actor or default_actor()
    )


def delete_model(
    name: str, *, reason: str = "", actor: str | None = None, tracking_uri: Uri = None
) -> None:
    _store(tracking_uri).delete_registered_model(
        name, reason=reason, actor=actor or default_actor()
    )


def history(name: str, *, tracking_uri: Uri = None) -> list[RegistryEvent]:
    """Every event of the model, oldest first: versions created, archived, restored,
    deleted; aliases set and removed (with the previous version, actor and reason)."""
    found = _store(tracking_uri).list_registry_events(validate_model_name(name))
    if not found:
        raise ModelNotFoundError(f"No registered model named {name!r}, now or before.", name=name)
    return found


@dataclass(frozen=True)
class Lineage:
    """Where a model version came from."""

    name: str
    version: int
    package_digest: str
    source: str
    run_id: str | None
    experiment_id: str | None = None
    datasets: tuple[DatasetInput, ...] = ()
    git_commit: str | None = None
    git_dirty: bool | None = None
    entry_point: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "package_digest": self.package_digest,
            "source": self.source,
            "run_id": self.run_id,
            "experiment_id": self.experiment_id,
            "datasets": [
                {"ref": d.ref, "name": d.name, "version": d.version, "context": d.context}
                for d in self.datasets
            ],
            "git_commit": self.git_commit,
            "git_dirty": self.git_dirty,
            "entry_point": self.entry_point,
        }


def lineage(name: str, version: int | str, *, tracking_uri: Uri = None) -> Lineage:
    """The run, dataset versions and code version behind a model version."""
    store = _store(tracking_uri)
    mv = get_version(name, version, tracking_uri=tracking_uri)
    if mv.run_id is None:
        return Lineage(mv.name, mv.version, mv.package_digest, mv.source, None)
    run = store.get_run(mv.run_id)
    info = run.info
    return Lineage(
        name=mv.name,
        version=mv.version,
        package_digest=mv.package_digest,
        source=mv.source,
        run_id=mv.run_id,
        experiment_id=info.experiment_id,
        datasets=tuple(store.list_run_inputs(mv.run_id)),
        git_commit=info.source.git_commit,
        git_dirty=info.source.git_dirty,
        entry_point=info.source.entry_point,
    )
