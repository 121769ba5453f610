"""A loaded model: the framework object behind one predict interface.

::

    model = loopml.models.load("models:/churn@champion")
    model.predict(df)                 # numpy array; inputs checked against the signature
    model.predict_proba(records)      # where the model has it
    model.raw                         # the framework's own object
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loopml.errors import InvalidArgumentError
from loopml.models._examples import example_from_json
from loopml.models._manifest import verify_files
from loopml.models.flavors import Flavor
from loopml.models.signature import Signature, enforce_signature, to_model_input
from loopml.storage.paths import join_under

__all__ = ["LoadedModel"]

_NOT_READ = object()


def _is_frame(data: Any) -> bool:
    return hasattr(data, "columns") and hasattr(data, "to_numpy") and hasattr(data, "iloc")


class LoadedModel:
    """A model loaded from a package.

    Attributes:
        flavor: The flavor's name (``"sklearn"``, ``"python"``...).
        signature: The inputs (and outputs) the model expects, or ``None``.
        manifest: The package's manifest, as a dict.
        package_digest: The digest of the manifest: names the exact package loaded.
        requirements: ``{distribution: version}`` recorded when the model was saved.
        metadata: The caller's metadata recorded when the model was saved.
        raw: The framework's own model object.
        uri: The URI the model was first loaded from (models are cached by digest, so a
            later load through another URI of the same package returns this object).
    """

    def __init__(
        self,
        *,
        raw: Any,
        flavor: Flavor,
        manifest: Mapping[str, Any],
        package_digest: str,
        folder: Path,
        uri: str,
        signature: Signature | None,
        enforce_signature: bool,
    ) -> None:
        self.raw = raw
        self._flavor = flavor
        self.manifest = dict(manifest)
        self.package_digest = package_digest
        self.uri = uri
        self.signature = signature
        self._folder = folder
        self._enforce = enforce_signature
        self._wants_frame = flavor.wants_dataframe(raw) or (
            signature is not None and signature.kind == "columns"
        )
        self._example: Any = _NOT_READ
        self._lock = threading.Lock()

    @property
    def flavor(self) -> str:
        return self._flavor.name

    @property
    def needs_pickle(self) -> bool:
        """True if loading this package ran a pickle (it needed ``trusted=True``)."""
        return bool(self.manifest["needs_pickle"])

    @property
    def requirements(self) -> dict[str, str]:
        return dict(self.manifest["requirements"])

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self.manifest["metadata"])

    @property
    def input_example(self) -> Any:
        """The example saved with the model (a DataFrame or a numpy array), or ``None``;
        read from the package (and checked against its digest) on first use."""
        name = self.manifest["input_example"]
        if name is None:
            return None
        with self._lock:
            if self._example is _NOT_READ:
                entry = self.manifest["files"][name]
                verify_files(self._folder, {name: entry})
                data = Path(join_under(self._folder, name)).read_bytes()
                self._example = example_from_json(data)
            return self._example

    def __repr__(self) -> str:
        return f"<LoadedModel {self.flavor} {self.uri!r} {self.package_digest[:19]}>"

    def _prepare(self, data: Any, enforce: bool | None) -> Any:
        """``data`` checked against the signature (or normalised without one) and in the
        form the model takes: a DataFrame or a numpy array."""
        check = self._enforce if enforce is None else bool(enforce)
        if self.signature is not None and check:
            prepared = enforce_signature(self.signature, data)
        else:
            prepared = to_model_input(data)
        if self._wants_frame and not _is_frame(prepared):
            return self._as_frame(prepared)
        if not self._wants_frame and _is_frame(prepared):
            return prepared.to_numpy()
        return prepared

    def _as_frame(self, array: Any) -> Any:
        """A 2-D array as a DataFrame named after the signature's columns (when it has as
        many); otherwise the array is passed on and the flavor adapts it."""
        signature = self.signature
        if signature is None or signature.kind != "columns" or getattr(array, "ndim", 0) != 2:
            return array
        names = [spec.name for spec in signature.inputs]  # type: ignore[union-attr]
        if array.shape[1] != len(names):
            return array
        import pandas as pd

        return pd.DataFrame(array, columns=names)

    def predict(self, data: Any, *, enforce_signature: bool | None = None) -> Any:
        """Predictions for ``data`` as a numpy array.

        Args:
            data: A numpy array, a pandas DataFrame, a pyarrow Table, a list of records,
                a dict of columns or a 2-D list.
            enforce_signature: Check ``data`` against the signature (and cast it where that
                is safe); ``None`` uses what :func:`loopml.models.load` was told.

        Raises:
            SignatureError: ``data`` does not match the signature (every problem listed).
            InvalidArgumentError: ``data`` is not one of the accepted forms.
        """
        import numpy as np

        return np.asarray(self._flavor.predict(self.raw, self._prepare(data, enforce_signature)))

    def predict_proba(self, data: Any, *, enforce_signature: bool | None = None) -> Any:
        """Class probabilities for ``data`` as a numpy array (classifiers only).

        Raises:
            InvalidArgumentError: the model has no ``predict_proba``.
        """
        import numpy as np

        result = self._flavor.predict_proba(self.raw, self._prepare(data, enforce_signature))
        if result is None:
            raise self._no_proba()
        return np.asarray(result)

    def predict_prepared(self, data: Any, *, proba: bool = False) -> Any:
        """The framework object's own ``predict`` (or, with ``proba``, ``predict_proba``)
        called on ``data`` as it is: no signature check, no conversion by the flavor.

        For callers that checked and shaped the input themselves: the model server checks
        each request against the signature and hands a merged 2-D array in the signature's
        column order. For a scikit-learn model fitted on a DataFrame that skips building a
        DataFrame per call (about 1.5 ms here). The server first verifies, on the model's
        input example, that this gives exactly the answers of :meth:`predict`; a model that
        needs its columns by name (a ColumnTransformer) fails that check and keeps the
        checked path. Falls back to the flavor's own call when the object has no such method.
        """
        import numpy as np

        method = getattr(self.raw, "predict_proba" if proba else "predict", None)
        if callable(method):
            return np.asarray(method(data))
        if proba:
            result = self._flavor.predict_proba(self.raw, data)
            if result is None:
                raise self._no_proba()
            return np.asarray(result)
        return np.asarray(self._flavor.predict(self.raw, data))

    def _no_proba(self) -> InvalidArgumentError:
        return InvalidArgumentError(
            f"This {self.flavor} model ({type(self.raw).__name__}) has no predict_proba; "
            "use predict().",
            field="predict_proba",
        )
