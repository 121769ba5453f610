"""The XGBoost flavor: scikit-learn wrappers (``XGBClassifier``, ``XGBRegressor``,
``XGBRanker``, the random-forest variants) and raw ``xgboost.Booster`` objects.

Models are saved in XGBoost's own JSON format (``model.json``), which holds data only, so
loading never needs ``trusted=True``. For a scikit-learn wrapper the manifest records which
wrapper class to rebuild (from a fixed allowlist, never an arbitrary import path) and, for
classifiers, the classes; the wrapper is then re-created empty and filled with
``load_model``.

This module is itself named ``xgboost``: the framework is only ever imported inside
functions, by absolute name, through :func:`importlib.import_module`, so it can never pick up
this file instead of the real package.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from loopml.errors import InvalidArgumentError, MissingDependencyError
from loopml.models.flavors._base import Flavor, SavedFlavor
from loopml.storage.paths import join_under

__all__ = ["FLAVOR", "XGBoostFlavor"]

_MODEL_FILE = "model.json"
#: the wrapper classes a manifest may ask for; anything else is refused on load
_WRAPPERS = ("XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier", "XGBRFRegressor")
_CLASSIFIERS = ("XGBClassifier", "XGBRFClassifier")


def _framework(purpose: str) -> ModuleType:
    """The real ``xgboost`` package, or a MissingDependencyError naming the extra."""
    try:
        return importlib.import_module("xgboost")
    except ImportError as exc:
        raise MissingDependencyError.for_extra("xgboost", "xgboost", purpose) from exc


@cache
def _distribution(import_name: str) -> str:
    """The installed distribution that provides ``import_name`` (``xgboost-cpu`` or
    ``xgboost``), falling back to the import name when the metadata does not say."""
    found = importlib.metadata.packages_distributions().get(import_name) or []
    return import_name if not found or import_name in found else sorted(found)[0]


def _is_xgboost_class(cls: type, names: tuple[str, ...]) -> bool:
    return cls.__module__.split(".")[0] == "xgboost" and cls.__name__ in names


class XGBoostFlavor(Flavor):
    """Save / load / predict for XGBoost models (native JSON format, no pickle)."""

    name = "xgboost"
    extra = "xgboost"

    def matches(self, model: Any) -> bool:
        return any(_is_xgboost_class(cls, ("XGBModel", "Booster")) for cls in type(model).__mro__)

    def save(self, model: Any, folder: Path) -> SavedFlavor:
        xgb = _framework("Saving an XGBoost model")
        options: dict[str, Any] = {"file": _MODEL_FILE}
        if isinstance(model, xgb.Booster):
            options["kind"] = "booster"
        elif isinstance(model, xgb.XGBModel):
            wrapper = next(
                (c.__name__ for c in type(model).__mro__ if _is_xgboost_class(c, _WRAPPERS)),
                None,
            )
            if wrapper is None:
                raise InvalidArgumentError(
                    f"Cannot save a {type(model).__name__}: the XGBoost flavor saves "
                    f"{', '.join(_WRAPPERS)} or xgboost.Booster models.",
                    model_class=type(model).__name__,
                )
            model.get_booster()  # raises xgboost's NotFittedError for an unfitted model
            options["kind"] = "sklearn"
            options["wrapper"] = wrapper
            if wrapper in _CLASSIFIERS:
                options["n_classes"] = int(model.n_classes_)
                options["classes"] = [_plain(c) for c in model.classes_.tolist()]
        else:
            raise InvalidArgumentError(
                f"Not an XGBoost model: {type(model).__name__}.", model_class=type(model).__name__
            )
        Path(folder).mkdir(parents=True, exist_ok=True)
        model.save_model(join_under(folder, _MODEL_FILE))
        return SavedFlavor(
            framework="xgboost",
            framework_version=str(xgb.__version__),
            options=options,
            needs_pickle=False,
            requirements=(_distribution("xgboost"),),
        )

    def load(self, folder: Path, saved: SavedFlavor, *, trusted: bool) -> Any:
        options = saved.options
        kind = options.get("kind")
        if kind not in ("booster", "sklearn"):
            raise InvalidArgumentError(f"Unknown XGBoost model kind {kind!r} in the manifest.")
        wrapper = options.get("wrapper")
        if kind == "sklearn" and wrapper not in _WRAPPERS:
            raise InvalidArgumentError(
                f"Unknown XGBoost wrapper class {wrapper!r} in the manifest; "
                f"expected one of {', '.join(_WRAPPERS)}."
            )
        path = join_under(folder, str(options.get("file", _MODEL_FILE)))
        xgb = _framework("Loading an XGBoost model")
        if kind == "booster":
            return xgb.Booster(model_file=path)
        model = getattr(xgb, str(wrapper))()
        model.load_model(path)
        if "n_classes" in options and int(model.n_classes_) != options["n_classes"]:
            raise InvalidArgumentError(
                f"The manifest records {options['n_classes']} classes but {path!r} holds a "
                f"model with {model.n_classes_}."
            )
        return model

    def predict(self, model: Any, data: Any) -> Any:
        import numpy as np

        if self._is_booster(model):
            return np.asarray(model.inplace_predict(data))
        return np.asarray(model.predict(data))

    def predict_proba(self, model: Any, data: Any) -> Any | None:
        import numpy as np

        if self._is_booster(model) or not callable(getattr(model, "predict_proba", None)):
            return None
        return np.asarray(model.predict_proba(data))

    def wants_dataframe(self, model: Any) -> bool:
        booster = model if self._is_booster(model) else model.get_booster()
        return bool(booster.feature_names)

    @staticmethod
    def _is_booster(model: Any) -> bool:
        return any(_is_xgboost_class(cls, ("Booster",)) for cls in type(model).__mro__)


def _plain(value: Any) -> Any:
    """A class label as a JSON value (labels are ints for XGBoost, but be strict)."""
    if isinstance(value, bool | int | float | str):
        return value
    raise InvalidArgumentError(f"Cannot record the class label {value!r} in the manifest.")


FLAVOR = XGBoostFlavor()
