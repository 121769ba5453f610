"""The contract every model flavor follows.

A flavor knows one framework: whether an object is one of its models, how to save it into a
folder in the framework's own safe format, how to load it back, and how to predict with it.
Flavors are looked up by name in :mod:`loopml.models.flavors` and their modules are imported
only when used, so a missing framework costs nothing until a model of that kind is saved or
loaded (then :class:`~loopml.errors.MissingDependencyError` names the extra to install).

The package around the flavor's files (manifest, hashes, signature, requirements, blobs,
caching, URIs) is :mod:`loopml.models`' job, not the flavor's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Flavor", "SavedFlavor"]


@dataclass(frozen=True)
class SavedFlavor:
    """What :meth:`Flavor.save` wrote.

    ``options`` is flavor-specific JSON stored in the manifest and handed back to
    :meth:`Flavor.load` (file names, the model class, the task...). ``needs_pickle`` says the
    saved format can run code when loaded, so loading it requires ``trusted=True``.
    ``requirements`` are the distributions (pip names) the model needs at load time; the
    package records their installed versions.
    """

    framework: str
    framework_version: str
    options: dict[str, Any] = field(default_factory=dict)
    needs_pickle: bool = False
    requirements: tuple[str, ...] = ()


class Flavor(ABC):
    """One framework's save / load / predict. Subclasses are stateless singletons."""

    #: the flavor's name in manifests: "sklearn", "xgboost", "lightgbm", "pytorch", "onnx",
    #: "python"
    name: str
    #: the pip extra that installs the framework: ``pip install 'loopml[<extra>]'``
    extra: str

    @abstractmethod
    def matches(self, model: Any) -> bool:
        """True if ``model`` is an object this flavor saves. Must not import the framework
        (check ``type(model).__module__`` and the MRO's names), so detection stays cheap."""

    @abstractmethod
    def save(self, model: Any, folder: Path) -> SavedFlavor:
        """Write ``model`` into the empty folder ``folder`` (files only, any layout)."""

    @abstractmethod
    def load(self, folder: Path, saved: SavedFlavor, *, trusted: bool) -> Any:
        """Load the model saved in ``folder``. Refuse (``UntrustedModelError``) before
        reading anything that can run code unless ``trusted``; never read a path outside
        ``folder``."""

    @abstractmethod
    def predict(self, model: Any, data: Any) -> Any:
        """Predictions for ``data`` (a numpy array, or a pandas DataFrame when the model
        was trained on named columns), as a numpy array."""

    def predict_proba(self, model: Any, data: Any) -> Any | None:
        """Class probabilities as a numpy array, or ``None`` where the model has none."""
        return None

    def wants_dataframe(self, model: Any) -> bool:
        """True if the model must get a pandas DataFrame (it was fitted on named columns);
        otherwise inputs are passed as a numpy array."""
        return False
