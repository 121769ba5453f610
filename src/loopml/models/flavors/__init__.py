"""Model flavors: one module per framework, imported only when used.

Each module named in :data:`FLAVOR_MODULES` holds a ``FLAVOR`` object following
:class:`~loopml.models.flavors._base.Flavor`. :func:`get_flavor` imports a module the first
time its flavor is asked for; :func:`detect_flavor` finds the flavor of a model object and
imports only the modules whose framework the object's classes come from (plus ``python``,
the fallback), so saving a scikit-learn model never imports XGBoost or PyTorch.

A manifest names its flavor; only the names listed here are ever imported, so a manifest
cannot make loopml import a module of its choosing.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

from loopml.errors import InvalidArgumentError, MissingDependencyError
from loopml.models.flavors._base import Flavor, SavedFlavor

__all__ = [
    "FLAVOR_MODULES",
    "Flavor",
    "SavedFlavor",
    "detect_flavor",
    "flavor_names",
    "get_flavor",
]

FLAVOR_MODULES: dict[str, str] = {
    "sklearn": "loopml.models.flavors.sklearn",
    "xgboost": "loopml.models.flavors.xgboost",
    "lightgbm": "loopml.models.flavors.lightgbm",
    "pytorch": "loopml.models.flavors.pytorch",
    "onnx": "loopml.models.flavors.onnx",
    "python": "loopml.models.flavors.python",
}
"""Flavor name → the module holding its ``FLAVOR``."""

#: the pip extra that installs each flavor's framework (``None``: nothing beyond loopml)
_EXTRAS: dict[str, str | None] = {
    "sklearn": "sklearn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "pytorch": "pytorch",
    "onnx": "onnx",
    "python": None,
}

#: the order :func:`detect_flavor` asks in: specific frameworks first (XGBoost's and
#: LightGBM's scikit-learn wrappers also derive from scikit-learn classes), ``python`` last
#: because it matches any object with a ``predict`` method
_DETECTION_ORDER = ("xgboost", "lightgbm", "pytorch", "onnx", "sklearn", "python")

#: the top-level packages whose classes a flavor's models come from; a flavor is only
#: imported and asked when the model's class hierarchy includes one of them
_FRAMEWORK_ROOTS: dict[str, frozenset[str]] = {
    "xgboost": frozenset({"xgboost"}),
    "lightgbm": frozenset({"lightgbm"}),
    "pytorch": frozenset({"torch"}),
    "onnx": frozenset({"onnx", "onnxruntime"}),
    "sklearn": frozenset({"sklearn"}),
}

_loaded: dict[str, Flavor] = {}
_lock = threading.Lock()


def flavor_names() -> list[str]:
    """The names of every flavor loopml knows, sorted."""
    return sorted(FLAVOR_MODULES)


def get_flavor(name: str) -> Flavor:
    """The flavor called ``name``, its module imported on first use.

    Raises:
        InvalidArgumentError: no flavor has this name (the message lists the known names).
        MissingDependencyError: the flavor's framework is not installed (the message names
            the extra to install).
    """
    if not isinstance(name, str) or name not in FLAVOR_MODULES:
        raise InvalidArgumentError(
            f"Unknown model flavor {name!r}; expected one of {', '.join(flavor_names())}.",
            field="flavor",
        )
    flavor = _loaded.get(name)
    if flavor is None:
        with _lock:
            flavor = _loaded.get(name) or _import(name)
            _loaded[name] = flavor
    return flavor


def _import(name: str) -> Flavor:
    module_name = FLAVOR_MODULES[name]
    try:
        module = importlib.import_module(module_name)
    except MissingDependencyError:
        raise
    except ImportError as exc:
        missing = exc.name or ""
        if not missing or missing == module_name:  # our own module is absent: a bug, not a dep
            raise
        extra = _EXTRAS[name]
        if extra is None:
            raise
        raise MissingDependencyError.for_extra(
            missing.split(".")[0], extra, f"The {name} model flavor"
        ) from exc
    flavor = getattr(module, "FLAVOR", None)
    if not isinstance(flavor, Flavor):
        raise TypeError(f"{module_name} has no FLAVOR object following the Flavor contract")
    return flavor


def _class_roots(model: Any) -> set[str]:
    """The top-level package of every class in the model's class hierarchy."""
    return {str(getattr(cls, "__module__", "") or "").split(".")[0] for cls in type(model).__mro__}


def detect_flavor(model: Any) -> Flavor:
    """The flavor that saves ``model``.

    Frameworks are never imported to decide: a flavor is only asked (and its module
    imported) when one of the model's classes comes from that flavor's framework, which is
    then already imported by the caller.

    Raises:
        InvalidArgumentError: no flavor saves this object (it has no ``predict`` method);
            the message names the type and the flavors known.
        MissingDependencyError: the model's framework is installed, but something its
            flavor needs is not.
    """
    roots = _class_roots(model)
    for name in _DETECTION_ORDER:
        wanted = _FRAMEWORK_ROOTS.get(name)
        if wanted is not None and not roots & wanted:
            continue
        flavor = get_flavor(name)
        if flavor.matches(model):
            return flavor
    kind = f"{type(model).__module__}.{type(model).__qualname__}"
    raise InvalidArgumentError(
        f"No model flavor can save an object of type {kind}: loopml saves scikit-learn, "
        "XGBoost, LightGBM, PyTorch and ONNX models, and any object with a callable "
        "predict() method (the 'python' flavor, pickled). Pass flavor=... to choose one of "
        f"{', '.join(flavor_names())}.",
        field="model",
    )
