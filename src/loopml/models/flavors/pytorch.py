"""The PyTorch flavor: any ``torch.nn.Module``.

Two formats, chosen when saving:

``state_dict`` (the default, no pickle)
    The weights go to ``model.safetensors`` (``safetensors.torch.save_model``, which also
    copes with tied weights) and the manifest records the class's import path
    (``"package.module:Class"``) and its constructor keyword arguments. Loading imports the
    class, builds it with those arguments and fills it with ``safetensors.torch.load_model``
    (strict: every key must match); ``torch.load`` is never used. A class can be rebuilt when
    it is importable under its own name (not defined inside a function) and either

    * the module has an attribute ``loopml_init_kwargs``: a JSON-compatible ``dict`` of the
      keyword arguments to build it with (set it in ``__init__``), or
    * the class's ``__init__`` has no required argument.

    Importing the class runs the code of its module, which is as trusted as the Python
    environment the model is loaded in (the manifest can only name something already
    installed there). Only the parameters and persistent buffers are restored: other
    attributes must be set by the constructor. A class defined in ``__main__`` can only be
    loaded where that same script is ``__main__``.

``pickle`` (the fallback)
    When the class cannot be rebuilt (its constructor needs arguments and no
    ``loopml_init_kwargs`` is recorded, or the state dict holds something that is not a
    tensor) the whole module is written with ``torch.save`` to ``model.pt`` and the package is
    marked ``needs_pickle``: loading it runs code from the file, so it needs
    ``trusted=True`` and is refused (``UntrustedModelError``) before the file is opened
    otherwise.

``torch.export`` programs (``model.pt2``) are not produced: exporting needs an example input,
which :meth:`Flavor.save` does not get.

Models load on the CPU. Set the environment variable ``LOOPML_TORCH_DEVICE`` (e.g.
``"cuda"``) to move every loaded model to that device, or call
``FLAVOR.to_device(model, "cuda")``; :meth:`PyTorchFlavor.predict` feeds the data to
whichever device the model's parameters are on and returns a CPU numpy array.

The framework is imported only inside functions, by absolute name.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import itertools
import json
import os
import pickle
import re
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from loopml.errors import InvalidArgumentError, MissingDependencyError, UntrustedModelError
from loopml.models.flavors._base import Flavor, SavedFlavor
from loopml.storage.paths import join_under

__all__ = ["DEVICE_ENV", "FLAVOR", "PyTorchFlavor"]

DEVICE_ENV = "LOOPML_TORCH_DEVICE"
"""The environment variable naming the device loaded models are moved to (default CPU)."""

_STATE_FILE = "model.safetensors"
_PICKLE_FILE = "model.pt"
_FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_CLASS_PATH = re.compile(rf"({_NAME}(?:\.{_NAME})*):({_NAME}(?:\.{_NAME})*)")


def _framework(name: str, package: str, purpose: str) -> ModuleType:
    """The real ``torch`` / ``safetensors.torch`` module, or a MissingDependencyError."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise MissingDependencyError.for_extra(package, "pytorch", purpose) from exc


@cache
def _distribution(import_name: str) -> str:
    """The installed distribution that provides ``import_name``, falling back to the import
    name when the metadata does not say."""
    found = importlib.metadata.packages_distributions().get(import_name) or []
    return import_name if not found or import_name in found else sorted(found)[0]


class PyTorchFlavor(Flavor):
    """Save / load / predict for ``torch.nn.Module`` models (safetensors, pickle fallback)."""

    name = "pytorch"
    extra = "pytorch"

    def matches(self, model: Any) -> bool:
        return any(
            (cls.__module__, cls.__qualname__) == ("torch.nn.modules.module", "Module")
            for cls in type(model).__mro__
        )

    def save(self, model: Any, folder: Path) -> SavedFlavor:
        torch = _framework("torch", "torch", "Saving a PyTorch model")
        if not isinstance(model, torch.nn.Module):
            raise InvalidArgumentError(
                f"Not a PyTorch module: {type(model).__name__}.", model_class=type(model).__name__
            )
        version = str(torch.__version__)
        Path(folder).mkdir(parents=True, exist_ok=True)
        recipe = _rebuild_recipe(model, torch)
        if recipe is not None:
            st = _framework("safetensors.torch", "safetensors", "Saving a PyTorch model")
            class_path, init_kwargs, dtype = recipe
            st.save_model(model, join_under(folder, _STATE_FILE))
            options: dict[str, Any] = {
                "format": "state_dict",
                "file": _STATE_FILE,
                "class": class_path,
                "init_kwargs": init_kwargs,
                "dtype": dtype,
            }
            return SavedFlavor(
                framework="pytorch",
                framework_version=version,
                options=options,
                needs_pickle=False,
                requirements=(_distribution("torch"), _distribution("safetensors")),
            )
        pickle_path = join_under(folder, _PICKLE_FILE)
        try:
            torch.save(model, pickle_path)
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            Path(pickle_path).unlink(missing_ok=True)
            raise InvalidArgumentError(
                f"Cannot save the {type(model).__name__} module: it cannot be rebuilt from a "
                f"state dict and pickling it failed ({exc}). Define its class at module level "
                "and give it a loopml_init_kwargs dict (or a constructor without required "
                "arguments).",
                model_class=_class_path(model),
            ) from exc
        return SavedFlavor(
            framework="pytorch",
            framework_version=version,
            options={"format": "pickle", "file": _PICKLE_FILE, "class": _class_path(model)},
            needs_pickle=True,
            requirements=(_distribution("torch"),),
        )

    def load(self, folder: Path, saved: SavedFlavor, *, trusted: bool) -> Any:
        options = saved.options
        kind = options.get("format")
        if saved.needs_pickle or kind == "pickle":
            if not trusted:
                raise UntrustedModelError(
                    "This PyTorch model was saved as a full pickle (torch.save) because its "
                    "class could not be rebuilt from a state dict; loading it runs code from "
                    "the file. Pass trusted=True only if you trust where it came from."
                )
            path = join_under(folder, str(options.get("file", _PICKLE_FILE)))
            torch = _framework("torch", "torch", "Loading a PyTorch model")
            model = torch.load(path, map_location="cpu", weights_only=False)
        elif kind == "state_dict":
            model = self._load_state_dict(folder, options)
        else:
            raise InvalidArgumentError(f"Unknown PyTorch model format {kind!r} in the manifest.")
        model.eval()
        device = os.environ.get(DEVICE_ENV)
        return self.to_device(model, device) if device else model

    def to_device(self, model: Any, device: Any) -> Any:
        """Move ``model`` to ``device`` (``"cuda"``, ``"cuda:1"``, ``"cpu"``...) and return
        it; ``predict`` then runs there."""
        return model.to(device)

    def predict(self, model: Any, data: Any) -> Any:
        import numpy as np

        torch = _framework("torch", "torch", "Running a PyTorch model")
        tensors = itertools.chain(model.parameters(), model.buffers())
        first = next(tensors, None)
        device = first.device if first is not None else torch.device("cpu")
        float_dtype = next(
            (
                t.dtype
                for t in itertools.chain(model.parameters(), model.buffers())
                if t.is_floating_point()
            ),
            torch.float32,
        )
        array = data.to_numpy() if hasattr(data, "to_numpy") else np.asarray(data)
        if array.dtype.kind == "f":
            batch = torch.from_numpy(np.ascontiguousarray(array)).to(float_dtype)
        elif array.dtype.kind in "biu":
            batch = torch.from_numpy(np.ascontiguousarray(array))
        else:
            raise InvalidArgumentError(
                f"A PyTorch model takes numeric data, not {array.dtype} values."
            )
        model.eval()
        with torch.no_grad():
            output = model(batch.to(device))
        if isinstance(output, tuple | list) and output:
            output = output[0]
        if not isinstance(output, torch.Tensor):
            raise InvalidArgumentError(
                f"The PyTorch model returned {type(output).__name__}, not a tensor; "
                "loopml predicts with models whose forward returns a tensor (or a tuple "
                "whose first item is one)."
            )
        if output.dtype == torch.bfloat16:  # numpy has no bfloat16
            output = output.float()
        return output.detach().cpu().numpy()

    @staticmethod
    def _load_state_dict(folder: Path, options: dict[str, Any]) -> Any:
        """Rebuild the module from its class path, constructor kwargs and safetensors file."""
        class_path = options.get("class")
        match = _CLASS_PATH.fullmatch(class_path) if isinstance(class_path, str) else None
        if match is None:
            raise InvalidArgumentError(f"Invalid model class {class_path!r} in the manifest.")
        init_kwargs = options.get("init_kwargs", {})
        if not isinstance(init_kwargs, dict) or not all(isinstance(k, str) for k in init_kwargs):
            raise InvalidArgumentError("The manifest's init_kwargs must be an object.")
        dtype = options.get("dtype")
        if dtype is not None and dtype not in _FLOAT_DTYPES:
            raise InvalidArgumentError(f"Invalid tensor dtype {dtype!r} in the manifest.")
        path = join_under(folder, str(options.get("file", _STATE_FILE)))
        torch = _framework("torch", "torch", "Loading a PyTorch model")
        st = _framework("safetensors.torch", "safetensors", "Loading a PyTorch model")
        try:
            cls = _import_class(match.group(1), match.group(2))
        except (ImportError, AttributeError) as exc:
            raise InvalidArgumentError(
                f"Cannot import the model class {class_path!r}: {exc}. Install the code that "
                "defines it in this environment.",
                model_class=class_path,
            ) from exc
        if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
            raise InvalidArgumentError(
                f"{class_path!r} is not a torch.nn.Module class.", model_class=class_path
            )
        model = cls(**init_kwargs)
        if dtype is not None:
            model = model.to(getattr(torch, dtype))
        st.load_model(model, path, strict=True, device="cpu")
        return model


def _class_path(model: Any) -> str:
    cls = type(model)
    return f"{cls.__module__}:{cls.__qualname__}"


def _import_class(module_name: str, qualname: str) -> Any:
    """The object ``qualname`` inside the module ``module_name`` (imports the module)."""
    found: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        found = getattr(found, part)
    return found


def _rebuild_recipe(model: Any, torch: ModuleType) -> tuple[str, dict[str, Any], str | None] | None:
    """``(class path, constructor kwargs, float dtype)`` if the module can be rebuilt from a
    state dict, else ``None`` (then it is pickled)."""
    cls = type(model)
    class_path = _class_path(model)
    if _CLASS_PATH.fullmatch(class_path) is None:  # e.g. a class defined in a function
        return None
    try:
        if _import_class(cls.__module__, cls.__qualname__) is not cls:
            return None
    except (ImportError, AttributeError):
        return None
    init_kwargs = _init_kwargs(model)
    if init_kwargs is None:
        return None
    state = model.state_dict()
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        return None  # extra state (get_extra_state) that safetensors cannot hold
    float_dtypes = {
        str(v.dtype).removeprefix("torch.") for v in state.values() if v.is_floating_point()
    }
    dtype = float_dtypes.pop() if len(float_dtypes) == 1 else None
    if dtype not in _FLOAT_DTYPES:
        dtype = None
    return class_path, init_kwargs, dtype


def _init_kwargs(model: Any) -> dict[str, Any] | None:
    """The constructor keyword arguments: ``model.loopml_init_kwargs`` if set (it must survive
    a JSON round trip unchanged), ``{}`` if the constructor needs no argument, else ``None``."""
    recorded = getattr(model, "loopml_init_kwargs", None)
    if recorded is not None:
        try:
            valid = isinstance(recorded, dict) and json.loads(json.dumps(recorded)) == recorded
        except (TypeError, ValueError):
            valid = False
        if not valid:
            raise InvalidArgumentError(
                f"{type(model).__name__}.loopml_init_kwargs must be a dict of JSON values "
                "(str keys; numbers, strings, booleans, None, lists and dicts of them) so it "
                "can be recorded in the manifest.",
                model_class=type(model).__name__,
            )
        return dict(recorded)
    try:
        signature = inspect.signature(type(model))
    except (TypeError, ValueError):
        return None
    required = [
        p
        for p in signature.parameters.values()
        if p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]
    return None if required else {}


FLAVOR = PyTorchFlavor()
