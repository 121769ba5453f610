"""The scikit-learn flavor: estimators and pipelines, saved with skops.

Models are written with :func:`skops.io.dump` (``model.skops``): a zip of JSON and numpy
arrays, not a pickle. Loading first asks skops which types in the file it does not trust;
if there are any, loading needs ``trusted=True``. skops refuses types it does not know
because rebuilding them can run their code, and it also lists scikit-learn's tree storage
(``sklearn.tree._tree.Tree`` for decision trees, forests and gradient boosting, and the
``TreePredictor`` of histogram gradient boosting) because their node arrays are used
without bounds checks, so a crafted file could crash the process at predict time.

loopml closes that gap instead of asking for trust: those two types are accepted, and after
loading every tree in the model is checked — each internal node's children lie inside the
tree and after the node itself (so every walk ends at a leaf), every split feature and
categorical bitset index is in range, and the value arrays have one row per node. A model
that fails the check is refused with an :class:`~loopml.errors.IntegrityError`. Any other
type that skops does not trust still needs ``trusted=True``.

skops trusts every public scikit-learn estimator, and lists them when it is imported with
``sklearn.utils.all_estimators()``, which imports every module of scikit-learn (see
:mod:`loopml.models.flavors._skops_import` for how loopml imports skops). loopml asks the
same question of each estimator type a file names instead (:func:`is_public_estimator`): a
concrete subclass of ``BaseEstimator`` that a public scikit-learn module on the way to its
own exports under its name, which is what ``all_estimators`` finds (a test checks that every
estimator it lists passes).

The framework is only imported inside functions: this module is imported by the flavor
registry without importing scikit-learn or skops.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from pathlib import Path
from typing import Any

from loopml.errors import (
    IntegrityError,
    InvalidArgumentError,
    LoopmlError,
    UntrustedModelError,
)
from loopml.models.flavors._base import Flavor, SavedFlavor
from loopml.models.flavors._skops_import import import_skops
from loopml.storage.paths import join_under

__all__ = ["CHECKED_TYPES", "FLAVOR", "SklearnFlavor", "check_trees", "is_public_estimator"]

_MODEL_FILE = "model.skops"
_TRUST_ADVICE = (
    "skops can run code for types it does not know (and refuses a few scikit-learn types "
    "whose data can crash the process when crafted); pass trusted=True only for a model "
    "whose source you trust"
)


#: module names ``sklearn.utils.all_estimators`` skips
_NOT_WALKED = frozenset(
    {"tests", "externals", "setup", "conftest", "experimental", "estimator_checks"}
)


def is_public_estimator(type_name: str) -> bool:
    """Whether ``type_name`` (``module.Class``, as skops names types) is a public, concrete
    scikit-learn estimator: one that ``sklearn.utils.all_estimators()`` lists, so one that
    skops trusts by default. Only public scikit-learn modules are imported to find out (the
    name comes from the file being checked; anything but a string is not one)."""
    if not isinstance(type_name, str):
        return False
    module_name, _, class_name = type_name.rpartition(".")
    parts = module_name.split(".")
    if parts[0] != "sklearn" or not class_name.isidentifier() or class_name.startswith("_"):
        return False
    public = []  # the public modules on the way: sklearn.linear_model for ..._logistic
    for depth, part in enumerate(parts[1:], start=2):
        if part.startswith("_") or part in _NOT_WALKED or not part.isidentifier():
            break
        public.append(".".join(parts[:depth]))
    if not public:
        return False
    from sklearn.base import BaseEstimator

    for candidate in reversed(public):
        try:
            module = importlib.import_module(candidate)
        except ImportError:
            return False
        cls = getattr(module, class_name, None)
        if not isinstance(cls, type) or f"{cls.__module__}.{cls.__name__}" != type_name:
            continue
        return (
            issubclass(cls, BaseEstimator)
            and cls is not BaseEstimator
            and not getattr(cls, "__abstractmethods__", None)
        )
    return False


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
        sio = import_skops("Saving a scikit-learn model")
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
        sio = import_skops("Loading a scikit-learn model")
        file_name = str(saved.options.get("file", _MODEL_FILE))
        path = join_under(folder, file_name)
        untrusted = _read(sio.get_untrusted_types, file_name, file=path)
        unknown = [
            name
            for name in untrusted
            if name not in CHECKED_TYPES and not is_public_estimator(name)
        ]
        if unknown and not trusted:
            raise UntrustedModelError(
                f"{file_name} holds types that skops does not trust: "
                f"{', '.join(unknown)}. {_TRUST_ADVICE}.",
                types=unknown,
            )
        model = _read(sio.load, file_name, path, trusted=list(untrusted))
        check_trees(model, file_name)
        return model

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


#: scikit-learn types skops does not trust that loopml accepts because :func:`check_trees`
#: validates them after loading
CHECKED_TYPES = frozenset(
    {
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    }
)


def check_trees(model: Any, file_name: str = "model") -> int:
    """Check the node arrays of every tree inside ``model`` (any nesting: pipelines,
    ensembles, lists); returns how many trees were checked.

    Raises:
        IntegrityError: a tree whose nodes point outside it, backwards, or at a feature the
            model does not have.
    """
    checked = 0
    seen: set[int] = set()
    stack: list[tuple[Any, int | None]] = [(model, None)]
    while stack:
        obj, n_features = stack.pop()
        if id(obj) in seen or isinstance(obj, str | bytes | int | float | type(None)):
            continue
        seen.add(id(obj))
        n_features = getattr(obj, "n_features_in_", n_features)
        kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
        if kind == "sklearn.tree._tree.Tree":
            _check_tree(obj, file_name)
            checked += 1
        elif kind == "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor":
            _check_predictor(obj, n_features, file_name)
            checked += 1
        elif isinstance(obj, list | tuple):
            stack.extend((item, n_features) for item in obj)
        elif isinstance(obj, dict):
            stack.extend((item, n_features) for item in obj.values())
        elif type(obj).__module__.split(".")[0] == "numpy":
            if getattr(obj, "dtype", None) is not None and obj.dtype == object:
                stack.extend((item, n_features) for item in obj.ravel().tolist())
        elif hasattr(obj, "__dict__"):
            stack.extend((item, n_features) for item in vars(obj).values())
    return checked


def _refuse_tree(file_name: str, why: str) -> IntegrityError:
    return IntegrityError(
        f"{file_name} holds a tree whose nodes are inconsistent ({why}); it was not loaded.",
        file=file_name,
    )


def _check_children(left: Any, right: Any, internal: Any, count: int, file_name: str) -> None:
    import numpy as np

    index = np.arange(count)
    for name, child in (("left", left), ("right", right)):
        inner = child[internal]
        if inner.size and (inner.min() <= 0 or inner.max() >= count):
            raise _refuse_tree(file_name, f"a {name} child outside the tree")
        if np.any(inner <= index[internal]):
            raise _refuse_tree(file_name, f"a {name} child that does not come after its parent")


def _check_tree(tree: Any, file_name: str) -> None:
    count = int(tree.node_count)
    left, right = tree.children_left, tree.children_right
    feature = tree.feature
    if count < 1 or len(left) != count or len(right) != count or len(feature) != count:
        raise _refuse_tree(file_name, "arrays of the wrong length")
    if tree.value.shape[0] != count:
        raise _refuse_tree(file_name, "a value array of the wrong length")
    leaf = left == -1
    if (right[leaf] != -1).any():
        raise _refuse_tree(file_name, "a node with one child")
    internal = ~leaf
    _check_children(left, right, internal, count, file_name)
    split = feature[internal]
    if split.size and (split.min() < 0 or split.max() >= int(tree.n_features)):
        raise _refuse_tree(file_name, "a split on a feature the model does not have")


def _check_predictor(predictor: Any, n_features: int | None, file_name: str) -> None:
    nodes = predictor.nodes
    count = len(nodes)
    if count < 1:
        raise _refuse_tree(file_name, "no nodes")
    internal = nodes["is_leaf"] == 0
    _check_children(nodes["left"], nodes["right"], internal, count, file_name)
    split = nodes["feature_idx"][internal]
    if split.size and (split.min() < 0 or (n_features is not None and split.max() >= n_features)):
        raise _refuse_tree(file_name, "a split on a feature the model does not have")
    categorical = internal & (nodes["is_categorical"] != 0)
    bitsets = nodes["bitset_idx"][categorical]
    size = len(predictor.raw_left_cat_bitsets)
    if bitsets.size and (bitsets.min() < 0 or bitsets.max() >= size):
        raise _refuse_tree(file_name, "a categorical split outside its bitset table")


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
