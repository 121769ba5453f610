"""Writing model packages: :func:`save` into a folder, :func:`log_model` into a run.

::

    package = loopml.models.save(model, "churn-model/", input_example=X[:5])
    with loopml.start_run():
        info = loopml.models.log_model(model, "model", input_example=X[:5])
    info.uri                      # "runs:/<run id>/model"

A package is the flavor's files, ``input_example.json`` (when an example is given) and the
manifest ``loopml-model.json`` (see :mod:`loopml.models._manifest`). :func:`log_model`
stores every file as a blob (one batch), then the manifest (whose digest is the package
digest), then records them as the run's artifacts under ``<name>/``.
"""

from __future__ import annotations

import logging
import os
import platform
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopml._version import __version__
from loopml.config import Settings
from loopml.errors import InvalidArgumentError, InvalidStateError
from loopml.models._examples import example_to_json
from loopml.models._manifest import (
    EXAMPLE_FILE,
    FORMAT,
    MANIFEST_FILE,
    check_metadata,
    digest_bytes,
    hash_file,
    list_files,
    manifest_bytes,
)
from loopml.models._requirements import capture_requirements
from loopml.models.flavors import Flavor, detect_flavor, get_flavor
from loopml.models.signature import Signature, infer_signature, to_model_input
from loopml.storage.context import current_run
from loopml.storage.paths import join_under, local_path, validate_artifact_path
from loopml.storage.protocols import TrackingStore
from loopml.storage.uris import open_store
from loopml.storage.validation import validate_run_id

__all__ = ["ModelInfo", "ModelPackage", "log_model", "save"]

logger = logging.getLogger(__name__)

Uri = str | os.PathLike[str] | None


def _signature_of(manifest: Mapping[str, Any]) -> Signature | None:
    body = manifest.get("signature")
    return Signature.from_dict(body) if body else None


@dataclass(frozen=True)
class ModelPackage:
    """A package written by :func:`save`: its folder, manifest and package digest."""

    path: Path
    package_digest: str
    manifest: dict[str, Any]

    @property
    def flavor(self) -> str:
        return str(self.manifest["flavor"])

    @property
    def signature(self) -> Signature | None:
        return _signature_of(self.manifest)

    @property
    def requirements(self) -> dict[str, str]:
        return dict(self.manifest["requirements"])

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self.manifest["metadata"])


@dataclass(frozen=True)
class ModelInfo:
    """What :func:`log_model` logged. ``uri`` (``runs:/<run id>/<name>``) loads it."""

    uri: str
    run_id: str
    artifact_path: str
    package_digest: str
    flavor: str
    signature: Signature | None
    requirements: dict[str, str]


@dataclass(frozen=True)
class _Request:
    """A save's arguments, all checked before anything is written."""

    model: Any
    flavor: Flavor
    input_example: Any
    signature: Signature | None
    requirements: tuple[Iterable[str] | None, Iterable[str] | None]
    metadata: dict[str, Any]


def _choose_flavor(model: Any, flavor: str | Flavor | None) -> Flavor:
    if flavor is None:
        return detect_flavor(model)
    chosen = flavor if isinstance(flavor, Flavor) else get_flavor(flavor)
    if not chosen.matches(model):
        raise InvalidArgumentError(
            f"The {chosen.name} flavor does not save objects of type "
            f"{type(model).__module__}.{type(model).__qualname__}.",
            field="flavor",
        )
    return chosen


def _infer(flavor: Flavor, model: Any, example: Any) -> Signature:
    """The signature from the example and the model's predictions on it (inputs only if
    the model cannot predict on the example)."""
    try:
        output = flavor.predict(model, to_model_input(example))
    except Exception as exc:  # a user's model may fail in any way: keep the inputs
        logger.warning(
            "The model could not predict on the input example (%s: %s); its signature "
            "records the inputs only.",
            type(exc).__name__,
            exc,
        )
        output = None
    return infer_signature(example, output)


def _resolve_signature(
    flavor: Flavor, model: Any, example: Any, signature: Signature | Mapping[str, Any] | bool | None
) -> Signature | None:
    if signature is False:
        return None
    if isinstance(signature, Signature):
        return signature
    if signature is None:
        return None if example is None else _infer(flavor, model, example)
    if isinstance(signature, Mapping):
        return Signature.from_dict(signature)
    raise InvalidArgumentError(
        "signature must be a Signature, its dict form, None (inferred from input_example) or "
        f"False (no signature). Got {type(signature).__name__}.",
        field="signature",
    )


def _request(
    model: Any,
    flavor: str | Flavor | None,
    input_example: Any,
    signature: Signature | Mapping[str, Any] | bool | None,
    pip_requirements: Iterable[str] | None,
    extra_pip_requirements: Iterable[str] | None,
    metadata: Mapping[str, Any] | None,
) -> _Request:
    chosen = _choose_flavor(model, flavor)
    clean_metadata = check_metadata(metadata)
    capture_requirements((), pip_requirements, extra_pip_requirements)  # check them now
    if input_example is not None:
        example_to_json(input_example)  # refuse an unusable example before writing
    return _Request(
        model,
        chosen,
        input_example,
        _resolve_signature(chosen, model, input_example, signature),
        (pip_requirements, extra_pip_requirements),
        clean_metadata,
    )


def _write(request: _Request, folder: Path, run_id: str | None) -> dict[str, Any]:
    """Write the flavor's files and the example into ``folder``; return the manifest
    without its ``files`` entry."""
    saved = request.flavor.save(request.model, folder)
    example_file = None
    if request.input_example is not None:
        example_file = EXAMPLE_FILE
        Path(join_under(folder, EXAMPLE_FILE)).write_bytes(example_to_json(request.input_example))
    pip, extra = request.requirements
    return {
        "format": FORMAT,
        "flavor": request.flavor.name,
        "framework": saved.framework,
        "framework_version": saved.framework_version,
        "options": dict(saved.options),
        "needs_pickle": bool(saved.needs_pickle),
        "signature": request.signature.to_dict() if request.signature is not None else None,
        "input_example": example_file,
        "requirements": capture_requirements(saved.requirements, pip, extra),
        "python_version": platform.python_version(),
        "loopml_version": __version__,
        "created": int(time.time() * 1000),
        "run_id": run_id,
        "metadata": request.metadata,
    }


def _empty_destination(path: Any) -> Path:
    dest = local_path(path, field="path").expanduser().absolute()
    if dest.exists():
        if not dest.is_dir():
            raise InvalidArgumentError(
                f"Cannot save a model to {str(dest)!r}: it is a file, not a folder.", field="path"
            )
        if any(dest.iterdir()):
            raise InvalidArgumentError(
                f"Cannot save a model to {str(dest)!r}: the folder is not empty. Choose a new "
                "or empty folder.",
                field="path",
            )
    return dest


def save(
    model: Any,
    path: str | os.PathLike[str],
    *,
    flavor: str | Flavor | None = None,
    input_example: Any = None,
    signature: Signature | Mapping[str, Any] | bool | None = None,
    pip_requirements: Iterable[str] | None = None,
    extra_pip_requirements: Iterable[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> ModelPackage:
    """Write ``model`` as a package into the new or empty folder ``path``.

    Args:
        model: The model: a scikit-learn estimator or pipeline, an XGBoost, LightGBM,
            PyTorch or ONNX model, or any object with a ``predict`` method (pickled: loading
            it needs ``trusted=True``).
        path: The folder to create (it may exist if it is empty).
        flavor: A flavor name to use instead of detecting one.
        input_example: A few rows of input (DataFrame, array, records, dict of columns):
            stored as ``input_example.json`` and used to infer the signature.
        signature: A :class:`Signature`; ``None`` infers one from ``input_example`` and
            the model's predictions on it; ``False`` records none.
        pip_requirements: Requirements recorded instead of the captured ones.
        extra_pip_requirements: Requirements added to the captured ones.
        metadata: JSON-serialisable values kept in the manifest.

    The package is written into a temporary folder beside ``path`` and renamed into place,
    so a failure leaves nothing behind.
    """
    dest = _empty_destination(path)
    request = _request(
        model, flavor, input_example, signature, pip_requirements, extra_pip_requirements, metadata
    )
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.parent / f".loopml-save-{secrets.token_hex(8)}"
    staging.mkdir()  # not mkdtemp: the package keeps the umask's permissions
    try:
        manifest = _write(request, staging, None)
        manifest["files"] = {
            name: dict(zip(("digest", "size"), hash_file(join_under(staging, name)), strict=True))
            for name in list_files(staging)
        }
        data = manifest_bytes(manifest)
        (staging / MANIFEST_FILE).write_bytes(data)
        if dest.exists():
            dest.rmdir()  # empty, checked above; fails if something appeared meanwhile
        os.rename(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ModelPackage(dest, digest_bytes(data), manifest)


def _run_target(run_id: str | None, tracking_uri: Uri) -> tuple[TrackingStore, str]:
    active = current_run()
    if run_id is None:
        if active is None:
            raise InvalidStateError(
                "log_model needs a run: call it inside 'with loopml.start_run():' or pass "
                "run_id=...",
                field="run_id",
            )
        store = active.store if tracking_uri is None else open_store(tracking_uri)
        return store, active.run_id
    run_id = validate_run_id(run_id)
    if tracking_uri is None and active is not None and active.run_id == run_id:
        return active.store, run_id
    return open_store(tracking_uri), run_id


def log_model(
    model: Any,
    name: str = "model",
    *,
    input_example: Any = None,
    signature: Signature | Mapping[str, Any] | bool | None = None,
    pip_requirements: Iterable[str] | None = None,
    extra_pip_requirements: Iterable[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    run_id: str | None = None,
    tracking_uri: Uri = None,
) -> ModelInfo:
    """Log ``model`` as a package into the active run (or ``run_id``) under ``name``.

    The arguments are those of :func:`save`. The files go to the blob store in one batch,
    the manifest after them, and the run's artifacts ``<name>/...`` are recorded last, so a
    failure never leaves an artifact without its bytes.

    Returns:
        A :class:`ModelInfo`; ``info.uri`` (``runs:/<run id>/<name>``) loads the model and
        can be registered.

    Raises:
        InvalidStateError: there is no active run and no ``run_id``.
        RunNotFoundError: ``run_id`` names no run.
    """
    artifact_path = validate_artifact_path(name, field="name")
    store, run_id = _run_target(run_id, tracking_uri)
    store.get_run(run_id)  # fail before any work if the run does not exist
    request = _request(
        model, None, input_example, signature, pip_requirements, extra_pip_requirements, metadata
    )
    scratch = Path(Settings.from_env().resolved_cache_dir(), "tmp")
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch, prefix="log-model-") as tmp:
        folder = Path(tmp)
        manifest = _write(request, folder, run_id)
        names = list_files(folder)
        refs = store.blobs.put_files([join_under(folder, name) for name in names])
        manifest["files"] = {
            name: {"digest": ref.digest, "size": ref.size}
            for name, ref in zip(names, refs, strict=True)
        }
    package = store.blobs.put_bytes(manifest_bytes(manifest))
    entries = [
        (f"{artifact_path}/{n}", e["digest"], e["size"]) for n, e in manifest["files"].items()
    ]
    entries.append((f"{artifact_path}/{MANIFEST_FILE}", package.digest, package.size))
    store.record_artifacts(run_id, entries)
    return ModelInfo(
        uri=f"runs:/{run_id}/{artifact_path}",
        run_id=run_id,
        artifact_path=artifact_path,
        package_digest=package.digest,
        flavor=request.flavor.name,
        signature=request.signature,
        requirements=dict(manifest["requirements"]),
    )
