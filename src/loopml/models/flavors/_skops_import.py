"""Importing skops without the work it does on import that loopml does not need.

skops decides which types it trusts when ``skops.io`` is imported, and three parts of that
cost a model server's cold start and memory:

- **Every estimator.** It lists scikit-learn's estimators with ``all_estimators()``, which
  imports every module of scikit-learn: about 1.5 s and 190 MB. loopml imports skops with
  that list empty and asks about each estimator type a file names instead
  (:func:`~loopml.models.flavors.sklearn.is_public_estimator`).
- **PyTorch.** That walk reaches ``sklearn.externals.array_api_compat.torch``, so it imports
  PyTorch when it is installed. ``import torch`` fails while skops is imported.
- **The ufuncs' names.** It names every NumPy and SciPy ufunc (about 420), and a ufunc has no
  ``__module__``: skops looks for each one in every loaded module, in import order, about a
  million attribute lookups in a server's process (0.4 s). :func:`public_type_names` gives
  the same names in one pass over the modules, and skops gets it for its import only.

In such a process, skops called directly trusts fewer estimators (it asks for ``trusted=``
more), never more; its ufunc lists are the ones it would have made (a test compares them).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from loopml.errors import MissingDependencyError

__all__ = ["import_skops", "public_type_names"]

_UTILS = "skops.io._utils"

#: attributes every module has from its type rather than from its namespace
_MODULE_TYPE_ATTRIBUTES = frozenset(dir(ModuleType))


class _WithoutTorch(importlib.abc.MetaPathFinder):
    """Makes ``import torch`` fail while skops is imported (see the module docstring)."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "torch" or name.startswith("torch."):
            raise ImportError("PyTorch is not imported while skops is (loopml sklearn flavor)")
        return None


class _FastTypeNames(importlib.abc.MetaPathFinder):
    """Gives ``skops.io._utils`` :func:`public_type_names` as its ``get_public_type_names``
    as soon as it has run, so the rest of skops' import uses it; :meth:`restore` puts skops'
    own back afterwards."""

    def __init__(self) -> None:
        self.utils: Any = None  # skops.io._utils, once patched
        self.original: Any = None
        self.loader: importlib.abc.Loader | None = None  # its own loader

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name != _UTILS:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or not isinstance(spec.loader, importlib.abc.Loader):
            return spec
        self.loader = spec.loader
        spec.loader = _PatchingLoader(spec.loader, self.patch)
        return spec

    def patch(self, module: ModuleType) -> None:
        utils: Any = module
        original = getattr(utils, "get_public_type_names", None)
        whichmodule = getattr(utils, "whichmodule", None)
        if not callable(original) or not callable(whichmodule):
            return  # another skops: leave it as it is

        def names(module: ModuleType, oftype: type) -> list[str]:
            return public_type_names(module, oftype, whichmodule)

        self.utils, self.original = utils, original
        utils.get_public_type_names = names

    def restore(self) -> None:
        """skops' own function and the module's own loader, as if nothing happened."""
        if self.utils is not None:
            self.utils.get_public_type_names = self.original
            self.utils.__loader__ = self.utils.__spec__.loader = self.loader


class _PatchingLoader(importlib.abc.Loader):
    """A module's own loader, then ``then(module)``."""

    def __init__(self, loader: importlib.abc.Loader, then: Callable[[ModuleType], None]) -> None:
        self.loader, self.then = loader, then

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        self.then(module)

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename...: the module's own
        return getattr(self.loader, name)


def _no_estimators(*_args: Any, **_kwargs: Any) -> list[Any]:
    return []


def import_skops(purpose: str) -> ModuleType:
    """``skops.io``, imported as the module docstring says (once per process); ``purpose``
    names what needs it in the error when skops or scikit-learn is missing."""
    if "skops.io" in sys.modules:
        return sys.modules["skops.io"]
    finders: list[importlib.abc.MetaPathFinder] = (
        [] if "torch" in sys.modules else [_WithoutTorch()]
    )
    names = _FastTypeNames()
    finders.append(names)
    sys.meta_path[:0] = finders
    try:
        utils: Any = importlib.import_module("sklearn.utils")
        walk = utils.all_estimators
        utils.all_estimators = _no_estimators
        try:
            return importlib.import_module("skops.io")
        finally:
            utils.all_estimators = walk
    except ImportError as exc:
        raise MissingDependencyError.for_extra("skops", "sklearn", purpose) from exc
    finally:
        for finder in finders:
            sys.meta_path.remove(finder)
        names.restore()


def public_type_names(
    module: ModuleType, oftype: type, whichmodule: Callable[[Any, str], str]
) -> list[str]:
    """The sorted names (``module.name``) of the public objects of ``module`` that are
    instances of ``oftype``, kept where they start with ``module``'s parent package: what
    skops' ``get_public_type_names`` answers.

    An object without ``__module__`` is named after the first loaded module, in import order,
    that has it under its ``__name__``, as skops' ``whichmodule`` finds it. skops looks up
    each name in every module; here each module is visited once, and a plain module (no
    module ``__getattr__``) is asked only for the names in its namespace, since every other
    lookup would fail. An object found in no module goes to ``whichmodule`` itself."""
    prefix = module.__name__.rpartition(".")[0]
    named: set[str] = set()
    pending: dict[str, list[Any]] = {}
    for attr in dir(module):
        obj = getattr(module, attr)
        if not issubclass(obj.__class__, oftype):
            continue
        owner = getattr(obj, "__module__", None)
        if owner is not None:
            named.add(f"{owner}.{obj.__name__}")
            continue
        same_name = pending.setdefault(obj.__name__, [])
        if not any(o is obj for o in same_name):
            same_name.append(obj)
    owners = _first_owners(pending)
    for name, objs in pending.items():
        for obj in objs:
            owner = owners.get(id(obj)) or whichmodule(obj, name)
            named.add(f"{owner}.{name}")
    return sorted(n for n in named if n.startswith(prefix))


def _first_owners(pending: dict[str, list[Any]]) -> dict[int, str]:
    """``id(obj)`` → the first loaded module whose attribute ``name`` is ``obj``, for each
    ``obj`` of ``pending[name]`` found in one."""
    found: dict[int, str] = {}
    left = {name: list(objs) for name, objs in pending.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # as skops: numpy.core's warning
        for module_name, module in sys.modules.copy().items():
            if not left:
                break
            if module_name in ("__main__", "__mp_main__") or module is None:
                continue
            for name in _names_to_ask(module, left):
                try:
                    value = getattr(module, name, None)
                except (AttributeError, ImportError):
                    continue
                objs = left.get(name)
                if objs is None:
                    continue
                for obj in objs:
                    if value is obj:
                        found[id(obj)] = module_name
                        objs.remove(obj)
                        break
                if not objs:
                    left.pop(name, None)
    return found


def _names_to_ask(module: object, left: dict[str, list[Any]]) -> set[str]:
    """The names of ``left`` that ``getattr(module, name, None)`` could answer: for a plain
    module, the ones in its namespace or its type; for anything else, all of them."""
    namespace = getattr(module, "__dict__", None) if type(module) is ModuleType else None
    if not isinstance(namespace, dict) or "__getattr__" in namespace:
        return set(left)
    return (left.keys() & namespace.keys()) | (left.keys() & _MODULE_TYPE_ATTRIBUTES)
