"""The python flavor: any object with a callable ``predict`` (a user's own model class).

Such an object has no safe format, so it is pickled with cloudpickle (``model.pkl``).
Unpickling runs code chosen by whoever wrote the file, so loading needs ``trusted=True``
and the file is not opened at all without it. The object may also have a
``predict_proba``.
"""

from __future__ import annotations

import importlib
import pickle
import platform
from pathlib import Path
from typing import Any

from loopml.errors import IntegrityError, UntrustedModelError
from loopml.models.flavors._base import Flavor, SavedFlavor
from loopml.storage.paths import join_under

__all__ = ["FLAVOR", "PythonFlavor"]

_MODEL_FILE = "model.pkl"


class PythonFlavor(Flavor):
    """Save / load / predict for plain Python objects with a ``predict`` method (pickle)."""

    name = "python"
    extra = ""  # cloudpickle comes with loopml itself

    def matches(self, model: Any) -> bool:
        return not isinstance(model, type) and callable(getattr(model, "predict", None))

    def save(self, model: Any, folder: Path) -> SavedFlavor:
        cloudpickle = importlib.import_module("cloudpickle")
        cls = type(model)
        with open(join_under(folder, _MODEL_FILE), "wb") as out:
            cloudpickle.dump(model, out)
        return SavedFlavor(
            framework="python",
            framework_version=platform.python_version(),
            options={"file": _MODEL_FILE, "class": f"{cls.__module__}.{cls.__qualname__}"},
            needs_pickle=True,
            requirements=("cloudpickle",),
        )

    def load(self, folder: Path, saved: SavedFlavor, *, trusted: bool) -> Any:
        file_name = str(saved.options.get("file", _MODEL_FILE))
        if not trusted:
            raise UntrustedModelError(
                f"This model is a pickle ({file_name}); unpickling runs code chosen by "
                "whoever wrote the file. Pass trusted=True only for a model whose source "
                "you trust.",
                file=file_name,
            )
        path = join_under(folder, file_name)
        cloudpickle = importlib.import_module("cloudpickle")
        with open(path, "rb") as source:
            try:
                return cloudpickle.load(source)
            except (
                pickle.UnpicklingError,
                EOFError,
                ValueError,
                TypeError,
                IndexError,
                KeyError,
            ) as exc:
                raise IntegrityError(
                    f"{file_name} is not a readable pickle ({type(exc).__name__}: {exc}).",
                    file=file_name,
                ) from None

    def predict(self, model: Any, data: Any) -> Any:
        import numpy as np

        return np.asarray(model.predict(data))

    def predict_proba(self, model: Any, data: Any) -> Any | None:
        method = getattr(model, "predict_proba", None)
        if not callable(method):
            return None
        import numpy as np

        return np.asarray(method(data))


FLAVOR = PythonFlavor()
