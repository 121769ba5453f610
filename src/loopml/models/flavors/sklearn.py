"""The scikit-learn flavor: estimators and pipelines, saved with skops.

Models are written with :func:`skops.io.dump` (``model.skops``): a zip of JSON and numpy
arrays, not a pickle. Loading first asks skops which types in the file it does not trust;
if there are any, loading needs ``trusted=True``. skops refuses types it does not know
because rebuilding them can run their code, and it also lists a few scikit-learn types
whose stored data is used without bounds checks (``sklearn.tree._tree.Tree``, the node
storage of every tree and forest model), since a crafted file can crash the process at
predict time. So tree-based models load only with ``trusted=True``.

The framework is only imported inside functions: this module is imported by the flavor
registry without importing scikit-learn or skops.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from loopml.errors import (
    IntegrityError,
    InvalidArgumentError,
    LoopmlError,
    MissingDependencyError,
    UntrustedModelError,
)
from loopml.models.flavors._base import Flavor, SavedFlavor
from loopml.storage.paths import join_under

__all__ = ["FLAVOR", "SklearnFlavor"]

_MODEL_FILE = "model.skops"
_TRUST_ADVICE = (
    "skops can run code for types it does not know (and refuses a few scikit-learn types "
    "whose data can crash the process when crafted); pass trusted=True only for a model "
    "whose source you trust"
)


def _skops(purpose: str) -> ModuleType:
    try:
        return importlib.import_module("skops.io")
    except ImportError as exc:
        raise MissingDependencyError.for_extra("skops", "sklearn", purpose) from exc


def _from_sklearn(cls: type) -> bool:
    module = str(getattr(cls, "__module__", "") or "")
    return module == "sklearn" or module.startswith("sklearn.")


class SklearnFlavor(Flavor):
    """Save / load / predict for scikit-learn estimators and pipelines (skops format)."""

    name = "sklearn"
    extra = "sklearn"

    def matches(self, model: Any) -> bool:
        if isinstance(model, type) or not callable(getattr(model, "fit", None)):
            return False
        return any(_from_sklearn(cls) for cls in type(model).__mro__)

    def save(self, model: Any, folder: Path) -> SavedFlavor:
        sio = _skops("Saving a scikit-learn model")
        sio.dump(model, join_under(folder, _MODEL_FILE))
        cls = type(model)
        return SavedFlavor(
            framework="scikit-learn",
            framework_version=importlib.metadata.version("scikit-learn"),
            options={
                "file": _MODEL_FILE,
                "class": f"{cls.__module__}.{cls.__qualname__}",
                "skops_version": importlib.metadata.version("skops"),
            },
            needs_pickle=False,
            requirements=("scikit-learn", "skops"),
        )

    def load(self, folder: Path, saved: SavedFlavor, *, trusted: bool) -> Any:
        sio = _skops("Loading a scikit-learn model")
        file_name = str(saved.options.get("file", _MODEL_FILE))
        path = join_under(folder, file_name)
        untrusted = _read(sio.get_untrusted_types, file_name, file=path)
        if untrusted and not trusted:
            raise UntrustedModelError(
                f"{file_name} holds types that skops does not trust: "
                f"{', '.join(untrusted)}. {_TRUST_ADVICE}.",
                types=list(untrusted),
            )
        return _read(sio.load, file_name, path, trusted=list(untrusted))

    def predict(self, model: Any, data: Any) -> Any:
        import numpy as np

        if not callable(getattr(model, "predict", None)):
            raise InvalidArgumentError(
                f"This scikit-learn model ({type(model).__name__}) has no predict method; "
                "use .raw to call its own methods (transform...).",
                field="predict",
            )
        return np.asarray(model.predict(_adapt(model, data)))

    def predict_proba(self, model: Any, data: Any) -> Any | None:
        if not callable(getattr(model, "predict_proba", None)):
            return None
        import numpy as np

        return np.asarray(model.predict_proba(_adapt(model, data)))

    def wants_dataframe(self, model: Any) -> bool:
        return hasattr(model, "feature_names_in_")


def _read(call: Any, file_name: str, *args: Any, **kwargs: Any) -> Any:
    """Call a skops reader, turning its failures (a file that is not a skops zip, a broken
    schema...) into a loopml error that names the file."""
    try:
        return call(*args, **kwargs)
    except LoopmlError:
        raise
    except Exception as exc:
        raise IntegrityError(
            f"{file_name} is not a readable skops file ({type(exc).__name__}: {exc}). It may "
            "be corrupted, or not a skops file at all; loopml does not fall back to pickle.",
            file=file_name,
        ) from None


def _adapt(model: Any, data: Any) -> Any:
    """Give the estimator what it was fitted on: named columns if it has
    ``feature_names_in_``, a plain array otherwise (scikit-learn warns on a mismatch)."""
    names = getattr(model, "feature_names_in_", None)
    is_frame = hasattr(data, "columns") and hasattr(data, "to_numpy")
    if names is None and is_frame:
        return data.to_numpy()
    if names is not None and not is_frame:
        import numpy as np
        import pandas as pd

        array = np.asarray(data)
        if array.ndim == 2 and array.shape[1] == len(names):
            return pd.DataFrame(array, columns=list(names))
    return data


FLAVOR = SklearnFlavor()
