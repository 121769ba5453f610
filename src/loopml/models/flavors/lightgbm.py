"""The LightGBM flavor: ``LGBMClassifier``, ``LGBMRegressor``, ``LGBMRanker`` (any
``LGBMModel``) and raw ``lightgbm.Booster`` objects.

The booster is saved in LightGBM's text format (``model.txt``), which holds data only, so
loading never needs ``trusted=True``. The scikit-learn wrapper itself is not rebuilt (its
fitted state lives in private attributes); loading gives a :class:`LightGBMModel`, the
booster plus what the manifest recorded about the wrapper (the task, the classes and the
objective), so that ``predict`` returns class labels and ``predict_proba`` probabilities
exactly like the original classifier did.

The framework is imported only inside functions, by absolute name.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from loopml.errors import InvalidArgumentError, MissingDependencyError
from loopml.models.flavors._base import Flavor, SavedFlavor
from loopml.storage.paths import join_under

__all__ = ["FLAVOR", "LightGBMFlavor", "LightGBMModel"]

_MODEL_FILE = "model.txt"
_TASKS = ("classifier", "regressor", "ranker", "booster")
_CLASS_DTYPE_KINDS = "biufUO"


def _framework(purpose: str) -> ModuleType:
    """The real ``lightgbm`` package, or a MissingDependencyError naming the extra."""
    try:
        return importlib.import_module("lightgbm")
    except ImportError as exc:
        raise MissingDependencyError.for_extra("lightgbm", "lightgbm", purpose) from exc


@cache
def _distribution(import_name: str) -> str:
    """The installed distribution that provides ``import_name``, falling back to the import
    name when the metadata does not say."""
    found = importlib.metadata.packages_distributions().get(import_name) or []
    return import_name if not found or import_name in found else sorted(found)[0]


@dataclass
class LightGBMModel:
    """A loaded LightGBM model: the booster and what the scikit-learn wrapper knew.

    ``task`` is ``"classifier"``, ``"regressor"``, ``"ranker"`` or ``"booster"`` (a raw
    booster was saved). ``classes`` is the classifier's ``classes_`` (``None`` otherwise),
    ``objective`` the objective's name (``"custom"`` for a callable objective, whose booster
    predicts raw scores, so labels and probabilities cannot be derived).
    """

    booster: Any
    task: str
    classes: Any = None
    objective: str | None = None

    def predict(self, data: Any) -> Any:
        """Class labels for a classifier, otherwise the booster's predictions."""
        import numpy as np

        proba = self.predict_proba(data)
        if proba is None:
            return np.asarray(self.booster.predict(data))
        return np.asarray(self.classes)[np.argmax(proba, axis=1)]

    def predict_proba(self, data: Any) -> Any | None:
        """Class probabilities (one column per class), or ``None`` for a non-classifier."""
        import numpy as np

        if self.task != "classifier" or self.objective == "custom":
            return None
        raw = np.asarray(self.booster.predict(data))
        if raw.ndim == 1:  # binary: the probability of the second class
            return np.column_stack([1.0 - raw, raw])
        return raw

    @property
    def wants_dataframe(self) -> bool:
        """True if the booster was trained on named columns (not LightGBM's ``Column_i``)."""
        names = list(self.booster.feature_name())
        return names != [f"Column_{i}" for i in range(len(names))]


class LightGBMFlavor(Flavor):
    """Save / load / predict for LightGBM models (native text format, no pickle)."""

    name = "lightgbm"
    extra = "lightgbm"

    def matches(self, model: Any) -> bool:
        if isinstance(model, LightGBMModel):
            return True
        return any(
            cls.__module__.split(".")[0] == "lightgbm" and cls.__name__ in ("LGBMModel", "Booster")
            for cls in type(model).__mro__
        )

    def save(self, model: Any, folder: Path) -> SavedFlavor:
        lgb = _framework("Saving a LightGBM model")
        options: dict[str, Any] = {"file": _MODEL_FILE}
        if isinstance(model, LightGBMModel):
            booster = model.booster
            options["task"] = model.task
            if model.classes is not None:
                options.update(_classes_options(model.classes))
            options["objective"] = model.objective
        elif isinstance(model, lgb.Booster):
            booster = model
            options["task"] = "booster"
            options["objective"] = None
        elif isinstance(model, lgb.LGBMModel):
            booster = model.booster_  # raises LightGBM's NotFittedError for an unfitted model
            if isinstance(model, lgb.LGBMClassifier):
                options["task"] = "classifier"
                options.update(_classes_options(model.classes_))
            elif isinstance(model, lgb.LGBMRanker):
                options["task"] = "ranker"
            else:
                options["task"] = "regressor"
            objective = model.objective_
            options["objective"] = objective if isinstance(objective, str) else "custom"
        else:
            raise InvalidArgumentError(
                f"Not a LightGBM model: {type(model).__name__}.", model_class=type(model).__name__
            )
        Path(folder).mkdir(parents=True, exist_ok=True)
        booster.save_model(join_under(folder, _MODEL_FILE))
        return SavedFlavor(
            framework="lightgbm",
            framework_version=str(lgb.__version__),
            options=options,
            needs_pickle=False,
            requirements=(_distribution("lightgbm"),),
        )

    def load(self, folder: Path, saved: SavedFlavor, *, trusted: bool) -> LightGBMModel:
        options = saved.options
        task = options.get("task")
        if task not in _TASKS:
            raise InvalidArgumentError(f"Unknown LightGBM task {task!r} in the manifest.")
        objective = options.get("objective")
        if objective is not None and not isinstance(objective, str):
            raise InvalidArgumentError(f"Invalid LightGBM objective {objective!r} in the manifest.")
        classes = _classes_from_options(options) if task == "classifier" else None
        path = join_under(folder, str(options.get("file", _MODEL_FILE)))
        lgb = _framework("Loading a LightGBM model")
        booster = lgb.Booster(model_file=path)
        return LightGBMModel(booster=booster, task=task, classes=classes, objective=objective)

    def predict(self, model: Any, data: Any) -> Any:
        import numpy as np

        return np.asarray(self._loaded(model).predict(data))

    def predict_proba(self, model: Any, data: Any) -> Any | None:
        return self._loaded(model).predict_proba(data)

    def wants_dataframe(self, model: Any) -> bool:
        return self._loaded(model).wants_dataframe

    @staticmethod
    def _loaded(model: Any) -> LightGBMModel:
        """``model`` as a LightGBMModel (a scikit-learn wrapper or booster is wrapped)."""
        if isinstance(model, LightGBMModel):
            return model
        if hasattr(model, "booster_"):  # a fitted scikit-learn wrapper
            classes = getattr(model, "classes_", None)
            objective = model.objective_
            task = "classifier" if classes is not None else "regressor"
            return LightGBMModel(
                booster=model.booster_,
                task=task,
                classes=classes,
                objective=objective if isinstance(objective, str) else "custom",
            )
        return LightGBMModel(booster=model, task="booster")


def _classes_options(classes: Any) -> dict[str, Any]:
    """The manifest entries for a classifier's ``classes_`` (values and numpy dtype)."""
    import numpy as np

    array = np.asarray(classes)
    values = array.tolist()
    if array.ndim != 1 or not all(isinstance(v, bool | int | float | str) for v in values):
        raise InvalidArgumentError(
            "Cannot record the classifier's classes in the manifest: labels must be numbers, "
            "booleans or strings."
        )
    return {"classes": values, "classes_dtype": array.dtype.str}


def _classes_from_options(options: dict[str, Any]) -> Any:
    """The classifier's ``classes_`` rebuilt from the manifest."""
    import numpy as np

    values = options.get("classes")
    dtype_text = options.get("classes_dtype")
    if not isinstance(values, list) or not isinstance(dtype_text, str):
        raise InvalidArgumentError("The manifest of a LightGBM classifier must list its classes.")
    try:
        dtype = np.dtype(dtype_text)
    except TypeError as exc:
        raise InvalidArgumentError(
            f"Invalid classes dtype {dtype_text!r} in the manifest."
        ) from exc
    if dtype.kind not in _CLASS_DTYPE_KINDS:
        raise InvalidArgumentError(f"Invalid classes dtype {dtype_text!r} in the manifest.")
    return np.asarray(values, dtype=dtype)


FLAVOR = LightGBMFlavor()
