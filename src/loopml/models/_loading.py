"""Loading model packages: from a folder or a store, checked, cached by package digest.

Every load goes through the same gates, in this order, before a flavor reads a byte:

1. the manifest is read (from a store: a blob, verified against the package digest) and
   checked; a file path that could leave the package folder is refused
   (:class:`~loopml.errors.UnsafePathError`);
2. the flavor is looked up among the known names only;
3. a package that needs pickle is refused unless ``trusted=True``
   (:class:`~loopml.errors.UntrustedModelError`);
4. every file is checked against its size and digest in the manifest
   (:class:`~loopml.errors.IntegrityError` names the file).

A package from a store is materialised once into ``<cache dir>/models/<digest hex>/``
(staged in a temporary folder and renamed into place, its bytes verified by the blob store
on the way); later loads from that folder check every file again (step 4).

Loaded models are kept in a bounded, thread-safe, in-process LRU cache keyed by package
digest: loading the same package again returns the same :class:`LoadedModel` without
touching the disk. A model loaded with ``trusted=True`` is only handed out again to a caller
who also passes ``trusted=True``, so the cache never lets a call skip the trust check.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from loopml.config import Settings
from loopml.errors import (
    IntegrityError,
    InvalidArgumentError,
    UnsafePathError,
    UntrustedModelError,
)
from loopml.models._manifest import (
    MANIFEST_FILE,
    digest_bytes,
    parse_manifest,
    saved_flavor,
    verify_files,
)
from loopml.models.flavors import get_flavor
from loopml.models.loaded import LoadedModel
from loopml.models.signature import Signature
from loopml.models.uris import ACCEPTED_FORMS, parse_model_uri, resolve_digest
from loopml.storage.blobs import DIGEST_PREFIX
from loopml.storage.paths import join_under
from loopml.storage.protocols import TrackingStore
from loopml.storage.uris import open_store

__all__ = ["CACHE_SIZE", "clear_cache", "load"]

CACHE_SIZE = 32
"""How many loaded models the in-process cache keeps (least recently used go first)."""

_Key = tuple[str, bool, bool]  # package digest, enforce_signature, loaded with trusted


class _ModelCache:
    """A thread-safe LRU map from (digest, enforce, trusted) to a loaded model."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[_Key, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: str, enforce: bool, trusted: bool) -> LoadedModel | None:
        """A model this caller may have: loaded without trust, or with trust if the caller
        passed it too. A pickled package cached for a trusted caller is refused here."""
        with self._lock:
            for key in ((digest, enforce, False), (digest, enforce, True))[: 1 + trusted]:
                model = self._items.get(key)
                if model is not None:
                    self._items.move_to_end(key)
                    return model
            if not trusted:
                for (cached, _, _), model in self._items.items():
                    if cached == digest and model.needs_pickle:
                        raise _untrusted(model.manifest, model.uri)
        return None

    def put(self, key: _Key, model: LoadedModel) -> LoadedModel:
        """Keep ``model`` (or return the one another thread kept first)."""
        with self._lock:
            model = self._items.setdefault(key, model)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
            return model

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_cache = _ModelCache(CACHE_SIZE)


def clear_cache() -> None:
    """Forget every model loaded in this process (the next load reads from disk)."""
    _cache.clear()


def _untrusted(manifest: dict[str, Any], uri: str) -> UntrustedModelError:
    return UntrustedModelError(
        f"The model at {uri!r} ({manifest['flavor']} flavor) is stored as a pickle: loading "
        "it runs code chosen by whoever wrote it. Pass trusted=True only for a model whose "
        "source you trust.",
        uri=uri,
        flavor=manifest["flavor"],
    )


def _read_local_manifest(folder: Path, uri: str) -> bytes:
    path = folder / MANIFEST_FILE
    if path.is_symlink():
        raise UnsafePathError(
            f"Cannot load a model from {uri!r}: its {MANIFEST_FILE} is a symbolic link.",
            field="uri",
        )
    if not folder.is_dir() or not path.is_file():
        what = "does not exist" if not folder.exists() else f"has no {MANIFEST_FILE}"
        raise InvalidArgumentError(
            f"Cannot load a model from {uri!r}: the folder {what}. Expected {ACCEPTED_FORMS}.",
            field="uri",
        )
    return path.read_bytes()


def _materialise(store: TrackingStore, digest: str, manifest: dict[str, Any], data: bytes) -> Path:
    """The package's files in the cache folder, fetched (and verified) once."""
    root = _cache_root()
    final = root / digest.removeprefix(DIGEST_PREFIX)
    if final.is_dir():
        return final
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".staging-"))
    try:
        items = [(entry["digest"], join_under(staging, name)) for name, entry in _files(manifest)]
        store.blobs.get_files(items)
        (staging / MANIFEST_FILE).write_bytes(data)
        try:
            os.rename(staging, final)
        except OSError:
            if not final.is_dir():  # another process won the race only if final exists
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def _cache_root() -> Path:
    return Path(Settings.from_env().resolved_cache_dir(), "models")


def _in_cache(folder: Path) -> bool:
    return folder.parent == _cache_root()


def _files(manifest: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return sorted(manifest["files"].items())


def _signature(manifest: dict[str, Any], source: str) -> Signature | None:
    body = manifest["signature"]
    if body is None:
        return None
    try:
        return Signature.from_dict(body)
    except InvalidArgumentError as exc:
        raise IntegrityError(
            f"The signature in the manifest of {source!r} is not valid: {exc.message}",
            source=source,
        ) from None


def _open(
    folder_for: Any, data: bytes, digest: str, uri: str, trusted: bool, enforce: bool
) -> LoadedModel:
    """Gates 1-4 of the module docstring, then the flavor's load. ``folder_for(manifest)``
    gives the folder holding the files (fetching them if needed)."""
    manifest = parse_manifest(data, source=uri)
    flavor = get_flavor(manifest["flavor"])
    signature = _signature(manifest, uri)
    if manifest["needs_pickle"] and not trusted:
        raise _untrusted(manifest, uri)
    folder = Path(folder_for(manifest))
    try:
        verify_files(folder, manifest["files"])
    except IntegrityError as exc:
        if not _in_cache(folder):
            raise
        raise IntegrityError(
            f"{exc.message} It is loopml's cached copy of a package from the store: delete "
            f"{str(folder)!r} to fetch it again.",
            **exc.details,
        ) from None
    raw = flavor.load(folder, saved_flavor(manifest), trusted=trusted)
    model = LoadedModel(
        raw=raw,
        flavor=flavor,
        manifest=manifest,
        package_digest=digest,
        folder=folder,
        uri=uri,
        signature=signature,
        enforce_signature=enforce,
    )
    return _cache.put((digest, enforce, trusted), model)


def load(
    uri: str | os.PathLike[str],
    *,
    trusted: bool = False,
    enforce_signature: bool = True,
    tracking_uri: str | os.PathLike[str] | None = None,
) -> LoadedModel:
    """Load the model package at ``uri``.

    Args:
        uri: A folder written by :func:`loopml.models.save`, ``runs:/<run id>/<path>``,
            ``models:/<name>/<version>``, ``models:/<name>@<alias>`` or
            ``models:/<name>/latest``.
        trusted: Allow formats that can run code when loaded (pickle, skops types it does
            not know). Pass it only for a model whose source you trust.
        enforce_signature: Check every input against the model's signature by default.
        tracking_uri: The store for ``runs:/`` and ``models:/`` URIs (default: the one
            :func:`loopml.set_tracking_uri` or ``LOOPML_TRACKING_URI`` names).

    Raises:
        InvalidArgumentError: a malformed URI (``field="uri"``) or an unknown flavor.
        UntrustedModelError: the package needs ``trusted=True``.
        UnsafePathError: a file path in the manifest leads outside the package.
        IntegrityError: a file is missing, truncated or changed.
        RunNotFoundError, ArtifactNotFoundError, ModelNotFoundError: nothing is there.
    """
    trusted = bool(trusted)
    enforce = bool(enforce_signature)
    target = parse_model_uri(uri)
    if target.folder is not None:
        folder = target.folder.expanduser().absolute()
        data = _read_local_manifest(folder, target.text)
        digest = digest_bytes(data)
        cached = _cache.get(digest, enforce, trusted)
        if cached is not None:
            return cached
        return _open(lambda _: folder, data, digest, target.text, trusted, enforce)
    store = open_store(tracking_uri)
    digest = resolve_digest(store, target)
    cached = _cache.get(digest, enforce, trusted)
    if cached is not None:
        return cached
    data = store.blobs.read_bytes(digest)
    return _open(
        lambda manifest: _materialise(store, digest, manifest, data),
        data,
        digest,
        target.text,
        trusted,
        enforce,
    )
