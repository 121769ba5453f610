"""Model packages: save, log and load models of any flavor, with signatures and safe formats.

::

    with loopml.start_run():
        info = loopml.models.log_model(model, "model", input_example=X[:5])
    model = loopml.models.load(info.uri)            # or "models:/churn@champion"
    model.predict(X)

Importing this package does not import any framework (scikit-learn, skops, PyTorch,
XGBoost...) nor cloudpickle: flavors are imported when a model of theirs is saved or loaded.
"""

from typing import TYPE_CHECKING

from loopml import _lazy
from loopml.models._loading import clear_cache, load
from loopml.models.loaded import LoadedModel
from loopml.models.package import ModelInfo, ModelPackage, log_model, save
from loopml.models.signature import Signature, infer_signature
from loopml.models.uris import resolve_package

if TYPE_CHECKING:
    from loopml.models.evaluation import Comparison, EvaluationResult, compare, evaluate

#: imported on first use: a model server loads models but never evaluates them
_LAZY = {
    name: "loopml.models.evaluation"
    for name in ("Comparison", "EvaluationResult", "compare", "evaluate")
}

__all__ = [
    "Comparison",
    "EvaluationResult",
    "LoadedModel",
    "ModelInfo",
    "ModelPackage",
    "Signature",
    "clear_cache",
    "compare",
    "evaluate",
    "infer_signature",
    "load",
    "log_model",
    "resolve_package",
    "save",
]


__getattr__, __dir__ = _lazy.lazy_names(__name__, _LAZY, globals(), __all__)
