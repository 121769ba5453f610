"""Model URIs: where a model package is, and how to find its digest.

===============================  =========================================================
URI                              package
===============================  =========================================================
a folder path (or ``file://``)   a package written by :func:`loopml.models.save`
``runs:/<run id>/<path>``        logged by :func:`loopml.models.log_model` into that run:
                                 the run's artifact ``<path>/loopml-model.json``
``models:/<name>/<version>``     that registered version (a positive integer)
``models:/<name>@<alias>``       the version the alias points at now
``models:/<name>/latest``        the newest version that is not archived
===============================  =========================================================

Every form but the folder resolves to a *package digest*: the digest of the manifest blob
in the store's blob store (see :mod:`loopml.models._manifest`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlparse

from loopml.entities import ModelVersionStatus
from loopml.errors import ArtifactNotFoundError, InvalidArgumentError, ModelNotFoundError
from loopml.models._manifest import MANIFEST_FILE
from loopml.storage.paths import validate_artifact_path
from loopml.storage.protocols import TrackingStore
from loopml.storage.uris import open_store
from loopml.storage.validation import (
    validate_alias,
    validate_model_name,
    validate_model_version,
    validate_run_id,
)

__all__ = ["ACCEPTED_FORMS", "ModelUri", "parse_model_uri", "resolve_digest", "resolve_package"]

ACCEPTED_FORMS = (
    "a local folder holding a saved model package, 'runs:/<run id>/<artifact path>', "
    "'models:/<name>/<version>', 'models:/<name>@<alias>' or 'models:/<name>/latest'"
)

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):")
_SHOWN = 120

Kind = Literal["folder", "run", "version", "alias", "latest"]


@dataclass(frozen=True)
class ModelUri:
    """A parsed model URI (only the fields of its ``kind`` are set)."""

    kind: Kind
    text: str
    folder: Path | None = None
    run_id: str | None = None
    artifact_path: str | None = None
    name: str | None = None
    version: int | None = None
    alias: str | None = None


def _bad(uri: Any, reason: str) -> InvalidArgumentError:
    shown = repr(uri)
    shown = shown if len(shown) <= _SHOWN else shown[:_SHOWN] + "..."
    return InvalidArgumentError(
        f"Invalid model uri {shown}: {reason}. Expected {ACCEPTED_FORMS}.", field="uri"
    )


def _checked(uri: str, check: Any, value: Any) -> Any:
    """``check(value)``, with its error re-raised as a uri error."""
    try:
        return check(value)
    except InvalidArgumentError as exc:
        raise _bad(uri, exc.message) from None


def parse_model_uri(uri: Any) -> ModelUri:
    """Parse a model URI (see the module docstring for the forms).

    Raises:
        InvalidArgumentError: ``uri`` is none of the accepted forms (``field="uri"``); the
            message lists them.
    """
    if isinstance(uri, os.PathLike):
        return ModelUri("folder", os.fspath(uri), folder=Path(uri))
    if not isinstance(uri, str) or not uri.strip():
        raise _bad(uri, "it must be a non-empty string or path")
    if uri.startswith("runs:/"):
        return _parse_run(uri)
    if uri.startswith("models:/"):
        return _parse_registry(uri)
    scheme = _SCHEME.match(uri)
    if scheme is None:
        return ModelUri("folder", uri, folder=Path(uri))
    if scheme.group(1).lower() == "file":
        parsed = urlparse(uri)
        if parsed.netloc not in ("", "localhost"):
            raise _bad(uri, "a file:// URI must name a folder on this machine")
        return ModelUri("folder", uri, folder=Path(unquote(parsed.path)))
    raise _bad(uri, f"the scheme {scheme.group(1)!r} is not supported")


def _parse_run(uri: str) -> ModelUri:
    run_id, _, path = uri.removeprefix("runs:/").partition("/")
    if not run_id or not path:
        raise _bad(uri, "a runs:/ URI needs a run id and an artifact path")
    run_id = _checked(uri, validate_run_id, run_id)
    path = _checked(uri, lambda p: validate_artifact_path(p, field="artifact path"), path)
    return ModelUri("run", uri, run_id=run_id, artifact_path=path)


def _parse_registry(uri: str) -> ModelUri:
    rest = uri.removeprefix("models:/")
    if "@" in rest:
        name, _, alias = rest.partition("@")
        return ModelUri(
            "alias",
            uri,
            name=_checked(uri, validate_model_name, name),
            alias=_checked(uri, validate_alias, alias),
        )
    name, sep, version = rest.partition("/")
    if not name or not sep or not version:
        raise _bad(uri, "a models:/ URI needs a name and a version, alias or 'latest'")
    name = _checked(uri, validate_model_name, name)
    if version == "latest":
        return ModelUri("latest", uri, name=name)
    if not version.isascii() or not version.isdigit() or len(version) > 10:
        raise _bad(uri, f"the version {version!r} is not a positive integer")
    return ModelUri(
        "version", uri, name=name, version=_checked(uri, validate_model_version, int(version))
    )


def resolve_digest(store: TrackingStore, target: ModelUri) -> str:
    """The package digest a store URI points at now.

    Raises:
        RunNotFoundError, ArtifactNotFoundError, ModelNotFoundError: nothing is there.
        InvalidArgumentError: ``target`` is a folder (a folder has no digest in the store).
    """
    if target.kind == "run" and target.run_id and target.artifact_path:
        return _run_digest(store, target.run_id, target.artifact_path)
    if target.kind == "version" and target.name and target.version:
        return store.get_model_version(target.name, target.version).package_digest
    if target.kind == "alias" and target.name and target.alias:
        return store.get_model_version_by_alias(target.name, target.alias).package_digest
    if target.kind == "latest" and target.name:
        for version in store.list_model_versions(target.name):  # newest first
            if version.status == ModelVersionStatus.READY:
                return version.package_digest
        raise ModelNotFoundError(
            f"The model {target.name!r} has no version that is not archived.", name=target.name
        )
    raise _bad(target.text, "it does not name a package in a store")


def _run_digest(store: TrackingStore, run_id: str, path: str) -> str:
    manifest_path = f"{path}/{MANIFEST_FILE}"
    for info in store.list_artifacts(run_id, manifest_path):
        if info.path == manifest_path and not info.is_dir and info.digest:
            return info.digest
    raise ArtifactNotFoundError(
        f"The run {run_id} has no model at {path!r} (no artifact {manifest_path!r}); "
        "log one with loopml.models.log_model(model, name=...).",
        run_id=run_id,
        path=path,
    )


def resolve_package(uri: str, *, tracking_uri: str | os.PathLike[str] | None = None) -> str:
    """The package digest a ``runs:/`` or ``models:/`` URI points at now.

    This is what the registry records when a URI is registered as a version.

    Raises:
        InvalidArgumentError: a malformed URI, or a local folder (not in any store).
        RunNotFoundError, ArtifactNotFoundError, ModelNotFoundError: nothing is there.
    """
    target = parse_model_uri(uri)
    if target.kind == "folder":
        raise _bad(
            uri,
            "a local folder is not in any store; log the model with "
            "loopml.models.log_model() and use the runs:/ URI it returns",
        )
    return resolve_digest(open_store(tracking_uri), target)
