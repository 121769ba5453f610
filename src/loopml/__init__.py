"""loopml: the machine-learning lifecycle as one closed loop.

Importing this module does no I/O and no heavy imports; stores open on first use.
"""

from loopml._version import __version__
from loopml.autolog import autolog
from loopml.entities import (
    ArtifactInfo,
    DatasetInput,
    Experiment,
    Metric,
    PagedList,
    Run,
    RunData,
    RunInfo,
    RunStatus,
)
from loopml.errors import LoopmlError
from loopml.tracking.client import Client, get_tracking_uri, set_tracking_uri
from loopml.tracking.fluent import (
    ActiveRun,
    active_run,
    end_run,
    flush,
    log_artifact,
    log_artifacts,
    log_dict,
    log_figure,
    log_input,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    log_text,
    search_runs,
    set_tag,
    set_tags,
    start_run,
)

__all__ = [
    "ActiveRun",
    "ArtifactInfo",
    "Client",
    "DatasetInput",
    "Experiment",
    "LoopmlError",
    "Metric",
    "PagedList",
    "Run",
    "RunData",
    "RunInfo",
    "RunStatus",
    "__version__",
    "active_run",
    "autolog",
    "end_run",
    "evaluate",
    "flush",
    "get_tracking_uri",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "search_runs",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
]


#: attributes provided on first use: subpackages that import numpy, pyarrow or SQLAlchemy,
#: and ``evaluate`` (from ``loopml.models``), so that ``import loopml`` stays light
_LAZY_MODULES = ("data", "models", "registry")
_LAZY_FUNCTIONS = {"evaluate": "loopml.models"}


def __getattr__(name: str) -> object:
    import importlib

    if name in _LAZY_MODULES:
        return importlib.import_module(f"loopml.{name}")
    if name in _LAZY_FUNCTIONS:
        return getattr(importlib.import_module(_LAZY_FUNCTIONS[name]), name)
    raise AttributeError(f"module 'loopml' has no attribute {name!r}")
