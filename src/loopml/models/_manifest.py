"""The manifest of a model package (``loopml-model.json``) and the checks of its files.

A model package is a folder: the flavor's files, ``input_example.json`` when an example was
given, and the manifest, which records what the package holds and every other file's
BLAKE3 digest and size. The manifest is canonical JSON (sorted keys, no spaces), so its own
digest, the *package digest*, is a content hash of the whole package; in a store it is kept
as a blob under that digest and every version of the registry points at it.

Reading a manifest checks its shape and every file path (relative, no ``..``, see
:func:`loopml.storage.paths.validate_artifact_path`); before a flavor may open anything,
:func:`verify_files` checks every file on disk against its recorded size and digest.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loopml.errors import IntegrityError, InvalidArgumentError, UnsafePathError
from loopml.models.flavors import SavedFlavor
from loopml.storage.blobs import digest_bytes, hash_file, validate_digest
from loopml.storage.paths import join_under, validate_artifact_path

__all__ = [
    "EXAMPLE_FILE",
    "FORMAT",
    "MANIFEST_FILE",
    "check_metadata",
    "digest_bytes",
    "hash_file",
    "list_files",
    "manifest_bytes",
    "parse_manifest",
    "saved_flavor",
    "verify_files",
]

FORMAT = 1
"""The manifest layout version written into every manifest."""

MANIFEST_FILE = "loopml-model.json"
EXAMPLE_FILE = "input_example.json"

_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "format": int,
    "flavor": str,
    "framework": str,
    "framework_version": str,
    "options": dict,
    "needs_pickle": bool,
    "signature": (dict, type(None)),
    "input_example": (str, type(None)),
    "requirements": dict,
    "python_version": str,
    "loopml_version": str,
    "created": int,
    "run_id": (str, type(None)),
    "metadata": dict,
    "files": dict,
}


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """Canonical JSON: equal manifests always give equal bytes."""
    return json.dumps(
        manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def check_metadata(metadata: Any) -> dict[str, Any]:
    """A caller's ``metadata``: a JSON object (string keys; no NaN or infinity)."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping) or not all(isinstance(k, str) for k in metadata):
        raise InvalidArgumentError(
            f"metadata must be a dict with string keys. Got {type(metadata).__name__}.",
            field="metadata",
        )
    try:
        return dict(json.loads(json.dumps(dict(metadata), allow_nan=False)))
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(
            f"metadata must hold only JSON values (str, int, float, bool, None, lists and "
            f"dicts; no NaN or infinity): {exc}",
            field="metadata",
        ) from None


def list_files(folder: Path) -> list[str]:
    """Every file under ``folder`` (except the manifest) as sorted logical paths.

    Raises:
        UnsafePathError: a file name is not an acceptable logical path, or a flavor left a
            symbolic link in the package (links could point anywhere).
    """
    found = []
    for root, dirs, files in os.walk(folder):
        for name in (*dirs, *files):
            full = os.path.join(root, name)
            if os.path.islink(full):
                raise UnsafePathError(
                    f"The model package holds a symbolic link {name!r}; packages hold files only.",
                    field="files",
                )
        for name in files:
            relative = Path(os.path.relpath(os.path.join(root, name), folder)).as_posix()
            if relative != MANIFEST_FILE:
                found.append(validate_artifact_path(relative, field="file"))
    return sorted(found)


def parse_manifest(data: bytes, *, source: str) -> dict[str, Any]:
    """Parse and check a stored manifest.

    Raises:
        IntegrityError: the bytes are not a model manifest this loopml can read.
        UnsafePathError: a file path in the manifest could leave the package folder.
    """
    try:
        body = json.loads(data.decode("utf-8"))
        if not isinstance(body, dict):
            raise ValueError("not a JSON object")
        if body.get("format") != FORMAT:
            raise ValueError(f"unknown format {body.get('format')!r} (this loopml reads {FORMAT})")
        for key, kind in _REQUIRED.items():
            if key not in body:
                raise ValueError(f"the field {key!r} is missing")
            if not isinstance(body[key], kind) or (kind is int and isinstance(body[key], bool)):
                raise ValueError(f"the field {key!r} has the wrong type")
        body["files"] = _checked_files(body["files"])
        example = body["input_example"]
        if example is not None and example not in body["files"]:
            raise ValueError(f"the input example {example!r} is not among the files")
    except UnsafePathError:
        raise
    except (ValueError, TypeError, InvalidArgumentError) as exc:
        raise IntegrityError(
            f"{source} is not a valid loopml model manifest: {exc}", source=source
        ) from None
    return body


def _checked_files(files: dict[str, Any]) -> dict[str, dict[str, Any]]:
    checked = {}
    for path, entry in files.items():
        clean = validate_artifact_path(path, field="file path in the model manifest")
        if clean != path or path == MANIFEST_FILE:
            raise UnsafePathError(
                f"Unsafe file path in the model manifest {path!r}: not a plain relative path.",
                field="files",
            )
        if not isinstance(entry, dict):
            raise ValueError(f"the entry for {path!r} is not an object")
        size = entry.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError(f"bad size {size!r} for {path!r}")
        checked[path] = {"digest": validate_digest(entry.get("digest")), "size": size}
    return checked


def verify_files(folder: Path, files: Mapping[str, Mapping[str, Any]]) -> None:
    """Check that every file of the manifest is in ``folder`` with its recorded size and
    digest (and that no path leads outside ``folder``, symbolic links included).

    Raises:
        UnsafePathError: a path resolves outside ``folder``.
        IntegrityError: a file is missing, has another size, or other bytes; the message
            names the file.
    """
    for path, entry in files.items():
        local = join_under(folder, path)
        try:
            if not os.path.isfile(local):
                raise FileNotFoundError(local)
            size = os.path.getsize(local)
            if size != entry["size"]:
                raise _corrupted(
                    folder, path, f"is {size} bytes, the manifest says {entry['size']} (truncated?)"
                )
            digest, _ = hash_file(local)
        except OSError:
            raise _corrupted(folder, path, "is missing or cannot be read") from None
        if digest != entry["digest"]:
            raise _corrupted(folder, path, "does not match its digest in the manifest (changed)")


def _corrupted(folder: Path, path: str, problem: str) -> IntegrityError:
    return IntegrityError(
        f"The model file {path!r} in {str(folder)!r} {problem}. The package is corrupted or "
        "was tampered with; nothing was loaded.",
        file=path,
        folder=str(folder),
    )


def saved_flavor(manifest: Mapping[str, Any]) -> SavedFlavor:
    """What the flavor wrote, rebuilt from a manifest for :meth:`Flavor.load`."""
    return SavedFlavor(
        framework=manifest["framework"],
        framework_version=manifest["framework_version"],
        options=dict(manifest["options"]),
        needs_pickle=manifest["needs_pickle"],
        requirements=tuple(manifest["requirements"]),
    )
