"""Automatic logging of scikit-learn training: ``loopml.autolog()``.

::

    loopml.autolog()
    model = LogisticRegression().fit(X, y)   # a run with params, training metrics, the model

After :func:`autolog`, calling ``fit`` (or ``fit_transform`` / ``fit_predict`` where a
scikit-learn class defines its own) on a scikit-learn estimator logs, into the active run or
else into a new run that ends with the call:

- the estimator's parameters (``get_params(deep=True)``, so a pipeline's steps' too), as
  strings, at most ``max_params`` of them (the tag ``loopml.autolog.params_truncated`` says
  when some were left out);
- tags ``estimator_name`` (the class name) and ``estimator_class`` (module and name);
- training metrics computed on the training data after the fit, in one call: for
  classifiers ``training_accuracy``, ``training_f1`` (binary, or macro-averaged for more
  classes), ``training_roc_auc`` (binary, with ``predict_proba``), ``training_log_loss``
  (with ``predict_proba``); for regressors ``training_mae``, ``training_rmse``,
  ``training_r2``; for every estimator with a ``score`` method ``training_score``;
- for a hyper-parameter search (``GridSearchCV``, ``RandomizedSearchCV``...) also its
  ``best_params_`` as params ``best_<name>`` and ``best_score_`` as the metric
  ``best_cv_score``; the model logged is then the ``best_estimator_``;
- with ``log_models=True``, the fitted model as the run's artifact ``model`` (loadable with
  ``loopml.models.load("runs:/<run id>/model")``).

Only the outermost call is logged: the fits a pipeline makes of its steps and those a
search makes of its candidates are not. The nesting depth lives in a ContextVar, like the
active run, so threads and asyncio tasks that fit at the same time each log their own fit.
(Fits run by joblib in *worker threads* start with a fresh context, so with
``joblib.parallel_backend("threading")`` a search's candidate fits are logged as their own
runs; the default process-based backend runs them unpatched in other processes.)

The wrapper returns exactly what the original method returns and lets its exceptions
through unchanged. A failure while logging never fails the user's fit: it is reported as
one :class:`AutologgingWarning` per call (none with ``silent=True``).

How the patching works: every scikit-learn class (a subclass of ``BaseEstimator`` defined in
a ``sklearn`` module) already imported gets its *own* ``fit``, ``fit_transform`` and
``fit_predict`` wrapped (so inherited ones are wrapped once, on the class that defines them),
and a hook on ``BaseEstimator.__init_subclass__`` does the same for classes imported later.
This avoids ``sklearn.utils.all_estimators()``, which imports every scikit-learn module,
pytest and, when installed, PyTorch (over a second). ``autolog(disable=True)`` puts the
original functions back, with one exception: scikit-learn's ``set_output`` wraps the
``fit_transform`` of a transformer class when the class is defined, so for transformers
imported while autologging was on that wrapper holds ours; it stays, and does nothing but
call the original while autologging is off.

Importing this module is light (no scikit-learn, numpy or store): they are imported when
:func:`autolog` is called or a fit is logged.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import logging
import math
import os
import sys
import threading
import warnings
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any, cast

from loopml.errors import InvalidArgumentError
from loopml.storage.validation import MAX_KEY_LENGTH, MAX_VALUE_LENGTH

__all__ = ["AutologgingWarning", "autolog"]

logger = logging.getLogger(__name__)

#: the methods wrapped, where a scikit-learn class defines them itself
PATCHED_METHODS = ("fit", "fit_transform", "fit_predict")
#: the tag set when ``max_params`` left some params out (value: "<logged> of <total>")
TRUNCATED_TAG = "loopml.autolog.params_truncated"
#: the tag every autologged run gets (value: the framework)
AUTOLOG_TAG = "loopml.autolog"
#: rows of the training data kept as the model's input example
EXAMPLE_ROWS = 5

_MARK = "__loopml_autolog__"


class AutologgingWarning(UserWarning):
    """Logging a fit failed; the fit itself was not affected."""


@dataclass(frozen=True)
class _Config:
    enabled: bool = False
    log_models: bool = True
    log_input_examples: bool = False
    max_params: int = 100
    silent: bool = False


_config = _Config()
#: 1 while an autologged call is in progress in this thread / task (0 otherwise): the calls
#: it makes (a pipeline's steps, a search's candidates) are not logged
_depth: ContextVar[int] = ContextVar("loopml_autolog_depth", default=0)
_lock = threading.RLock()
#: (class, method name) -> the attribute the class had before it was wrapped
_originals: dict[tuple[type, str], Any] = {}
#: (class, method name) -> the wrapper installed (to know whether it is still in place)
_installed: dict[tuple[type, str], Any] = {}
#: the hook's state: (BaseEstimator, whether it had its own __init_subclass__, that attribute)
_hook: tuple[type, bool, Any] | None = None


def autolog(
    *,
    log_models: bool = True,
    log_input_examples: bool = False,
    max_params: int = 100,
    disable: bool = False,
    silent: bool = False,
) -> None:
    """Log every scikit-learn ``fit`` from now on (see the module documentation).

    Args:
        log_models: Log the fitted model (a search's best estimator) as the artifact
            ``model`` of the run.
        log_input_examples: Keep the first rows of the training data as the model's input
            example (and infer its signature from them).
        max_params: The most params logged per fit; the tag
            ``loopml.autolog.params_truncated`` records when some were left out.
        disable: Stop autologging and put the original methods back.
        silent: Do not warn when logging a fit fails.

    Calling it again changes the options; the methods are never wrapped twice.

    Raises:
        InvalidArgumentError: ``max_params`` is not a non-negative integer.
        MissingDependencyError: scikit-learn is not installed (only when enabling).
    """
    global _config
    if isinstance(max_params, bool) or not isinstance(max_params, int) or max_params < 0:
        raise InvalidArgumentError(
            f"max_params must be a non-negative integer. Got {max_params!r} instead.",
            field="max_params",
        )
    with _lock:
        if disable:
            _config = replace(_config, enabled=False, silent=bool(silent))
            _unpatch_all()
            return
        base = _base_estimator()
        _config = _Config(
            enabled=True,
            log_models=bool(log_models),
            log_input_examples=bool(log_input_examples),
            max_params=max_params,
            silent=bool(silent),
        )
        _install_hook(base)
        for cls in _sklearn_subclasses(base):
            _patch_class(cls)


# -- patching ----------------------------------------------------------------------------------


def _base_estimator() -> type:
    try:
        from sklearn.base import BaseEstimator
    except ImportError as exc:
        from loopml.errors import MissingDependencyError

        raise MissingDependencyError.for_extra(
            "scikit-learn", "sklearn", "loopml.autolog()"
        ) from exc
    return cast(type, BaseEstimator)


def _is_sklearn(cls: type) -> bool:
    module = getattr(cls, "__module__", None) or ""
    return module == "sklearn" or module.startswith("sklearn.")


def _sklearn_subclasses(base: type) -> list[type]:
    """``base`` and every subclass of it defined in scikit-learn that is imported now."""
    seen: set[type] = {base}
    stack = [base]
    found = [base]
    while stack:
        sub: type
        for sub in type.__subclasses__(stack.pop()):
            if sub not in seen:
                seen.add(sub)
                stack.append(sub)
                if _is_sklearn(sub):
                    found.append(sub)
    return found


def _patch_class(cls: type) -> None:
    """Wrap the methods ``cls`` defines itself (not the ones it inherits)."""
    own = vars(cls)
    for name in PATCHED_METHODS:
        if name not in own:
            continue
        key = (cls, name)
        current = own[name]
        if key in _installed and current is _installed[key]:
            continue  # wrapped already
        if _is_wrapped(current):
            continue  # our wrapper, wrapped again by someone else (it follows _config)
        wrapped = _wrap_attribute(current)
        if wrapped is None:
            continue
        _originals[key] = current
        _installed[key] = wrapped
        type.__setattr__(cls, name, wrapped)


def _is_wrapped(attribute: Any) -> bool:
    fn = getattr(attribute, "fn", attribute)  # scikit-learn's available_if descriptor
    while fn is not None:
        if getattr(fn, _MARK, False):
            return True
        fn = getattr(fn, "__wrapped__", None)
    return False


def _wrap_attribute(attribute: Any) -> Any:
    """The wrapped attribute: a function, or a copy of an ``available_if`` descriptor whose
    function is wrapped; ``None`` for anything else (a property, say)."""
    if inspect.isfunction(attribute):
        return _wrap(attribute)
    inner = getattr(attribute, "fn", None)
    if inspect.isfunction(inner) and hasattr(type(attribute), "__get__"):
        try:
            descriptor = copy.copy(attribute)
            descriptor.fn = _wrap(inner)
        except Exception:  # an unknown descriptor: leave it alone
            return None
        return descriptor
    return None


def _unpatch_all() -> None:
    global _hook
    for key, original in list(_originals.items()):
        cls, name = key
        if vars(cls).get(name) is _installed[key]:
            type.__setattr__(cls, name, original)
        # else: something re-wrapped our wrapper (scikit-learn's set_output does so for
        # fit_transform of classes defined while autolog was on); it stays, passing through
        del _originals[key]
        del _installed[key]
    if _hook is not None:
        base, had_own, attribute = _hook
        if had_own:
            type.__setattr__(base, "__init_subclass__", attribute)
        else:
            with contextlib.suppress(AttributeError):
                type.__delattr__(base, "__init_subclass__")
        _hook = None


def _install_hook(base: type) -> None:
    """Wrap the methods of scikit-learn classes defined (imported) from now on."""
    global _hook
    if _hook is not None:
        return
    had_own = "__init_subclass__" in vars(base)
    attribute = vars(base).get("__init_subclass__")

    def __init_subclass__(cls: type, /, **kwargs: Any) -> None:
        if attribute is not None:
            attribute.__get__(None, cls)(**kwargs)
        else:
            super(cast(Any, base), cls).__init_subclass__(**kwargs)
        if _is_sklearn(cls):
            try:
                with _lock:
                    if _hook is not None:
                        _patch_class(cls)
            except Exception:  # never fail a class definition
                logger.debug("autolog could not patch %r", cls, exc_info=True)

    type.__setattr__(base, "__init_subclass__", classmethod(__init_subclass__))
    _hook = (base, had_own, attribute)


def _wrap(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        config = _config
        if not config.enabled or _depth.get():
            return original(self, *args, **kwargs)
        token = _depth.set(1)
        try:
            result, problems = _call_and_log(config, original, self, args, kwargs)
        finally:
            _depth.reset(token)
        if problems and not config.silent:
            warnings.warn(
                f"loopml.autolog could not log {type(self).__name__}.{original.__name__}: "
                + "; ".join(problems)
                + ". The estimator was fitted normally.",
                AutologgingWarning,
                stacklevel=2,
            )
        return result

    setattr(wrapper, _MARK, True)
    return wrapper


# -- logging one call --------------------------------------------------------------------------


def _describe(what: str, exc: BaseException) -> str:
    return f"{what} failed ({type(exc).__name__}: {exc})"


def _call_and_log(
    config: _Config,
    original: Callable[..., Any],
    estimator: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> tuple[Any, list[str]]:
    """Call ``original`` and log it; return its result and what could not be logged."""
    from loopml.tracking import fluent

    problems: list[str] = []
    run = fluent.active_run()
    owned = None
    if run is None:
        try:
            run = owned = fluent.start_run(os.environ.get("LOOPML_EXPERIMENT") or None)
        except Exception as exc:
            problems.append(_describe("starting a run", exc))
            return original(estimator, *args, **kwargs), problems
    try:
        _log_before(run, config, estimator, owned is not None)
    except Exception as exc:
        problems.append(_describe("logging the params", exc))
    try:
        result = original(estimator, *args, **kwargs)
    except BaseException:
        _end_failed(owned)
        raise
    try:
        _log_after(run, config, original, estimator, args, kwargs, problems)
    except Exception as exc:
        problems.append(_describe("logging", exc))
    except BaseException:  # interrupted while logging: the run did not finish
        _end_failed(owned)
        raise
    if owned is not None:
        try:
            owned.end()
        except Exception as exc:
            problems.append(_describe("ending the run", exc))
    return result, problems


def _end_failed(owned: Any) -> None:
    """End the run this call started with the error being raised (FAILED, or KILLED)."""
    if owned is not None:
        with contextlib.suppress(Exception):  # report the user's error, not ours
            owned.__exit__(*sys.exc_info())


def _log_before(run: Any, config: _Config, estimator: Any, owned: bool) -> None:
    cls = type(estimator)
    tags = {
        "estimator_name": cls.__name__,
        "estimator_class": f"{cls.__module__}.{cls.__qualname__}",
    }
    if owned:
        tags[AUTOLOG_TAG] = "sklearn"
    params = _stringify(estimator.get_params(deep=True))
    if len(params) > config.max_params:
        tags[TRUNCATED_TAG] = f"{config.max_params} of {len(params)}"
        params = dict(list(params.items())[: config.max_params])
    run.client.set_tags(run.run_id, tags)
    if params:
        run.client.log_params(run.run_id, params)


def _log_after(
    run: Any,
    config: _Config,
    original: Callable[..., Any],
    estimator: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    problems: list[str],
) -> None:
    X, y, sample_weight = _training_data(original, estimator, args, kwargs)
    search = hasattr(estimator, "best_params_") and hasattr(estimator, "cv_results_")
    try:
        metrics = _training_metrics(estimator, X, y, sample_weight)
        if search:
            best_score = getattr(estimator, "best_score_", None)
            if best_score is not None:
                metrics["best_cv_score"] = float(best_score)
            best = _stringify({f"best_{k}": v for k, v in estimator.best_params_.items()})
            if best:
                run.client.log_params(run.run_id, best)
        if metrics:
            run.client.log_metrics(run.run_id, metrics)
    except Exception as exc:
        problems.append(_describe("logging the metrics", exc))
    if not config.log_models:
        return
    model = estimator
    if search:
        model = getattr(estimator, "best_estimator_", None)
        if model is None:  # refit=False: there is no fitted model to log
            return
    example = _head(X) if config.log_input_examples else None
    try:
        _log_model(run, model, example)
    except Exception as exc:
        problems.append(_describe("logging the model", exc))


def _log_model(run: Any, model: Any, example: Any) -> None:
    from loopml import models

    if example is not None:
        try:
            models.log_model(model, "model", input_example=example, run_id=run.run_id)
            return
        except Exception:  # an example the package cannot store: log the model without it
            logger.debug("autolog: logging the model with an input example failed", exc_info=True)
    models.log_model(model, "model", run_id=run.run_id)


def _stringify(params: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in params.items():
        name = str(key)
        if not name or name.strip() != name or len(name) > MAX_KEY_LENGTH:
            continue
        text = value if isinstance(value, str) else str(value)
        text = text.replace("\x00", "")
        if len(text) > MAX_VALUE_LENGTH:
            text = text[: MAX_VALUE_LENGTH - 3] + "..."
        out[name] = text
    return out


_signatures: dict[Callable[..., Any], inspect.Signature | None] = {}


def _signature(fn: Callable[..., Any]) -> inspect.Signature | None:
    if fn not in _signatures:
        try:
            _signatures[fn] = inspect.signature(fn)
        except (TypeError, ValueError):
            _signatures[fn] = None
    return _signatures[fn]


def _training_data(
    original: Callable[..., Any], estimator: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, Any, Any]:
    """``X``, ``y`` and ``sample_weight`` of the call (``None`` where not given)."""
    sig = _signature(original)
    if sig is not None:
        try:
            bound = sig.bind(estimator, *args, **kwargs).arguments
        except TypeError:
            pass
        else:
            names = list(sig.parameters)[1:]
            X = bound.get(names[0]) if names else None
            y = bound.get(names[1]) if len(names) > 1 else None
            extra = bound.get(names[-1], {}) if names else {}
            weight = bound.get("sample_weight")
            if weight is None and isinstance(extra, dict):
                weight = extra.get("sample_weight")
            return X, y, weight
    X = args[0] if args else kwargs.get("X")
    y = args[1] if len(args) > 1 else kwargs.get("y")
    return X, y, kwargs.get("sample_weight")


def _head(X: Any) -> Any:
    """The first rows of the training data, or ``None`` when it has no simple row slice."""
    if X is None or hasattr(X, "tocsr"):  # scipy.sparse
        return None
    if hasattr(X, "iloc"):
        return X.iloc[:EXAMPLE_ROWS]
    try:
        return X[:EXAMPLE_ROWS]
    except Exception:
        return None


def _training_metrics(estimator: Any, X: Any, y: Any, sample_weight: Any) -> dict[str, float]:
    """Metrics of the fitted estimator on its training data; each one that cannot be
    computed (no ``predict_proba``, a target it does not suit...) is left out."""
    if X is None:
        return {}
    from sklearn import metrics as m
    from sklearn.base import is_classifier, is_regressor

    weights: dict[str, Any] = {} if sample_weight is None else {"sample_weight": sample_weight}
    out: dict[str, float] = {}

    def add(name: str, compute: Callable[[], Any]) -> None:
        try:
            value = float(compute())
        except Exception:
            logger.debug("autolog: %s not computed", name, exc_info=True)
            return
        out[name] = value

    if y is not None and is_classifier(estimator):
        _classifier_metrics(estimator, X, y, weights, add, m)
    elif y is not None and is_regressor(estimator):
        predicted = _attempt(lambda: estimator.predict(X))
        if predicted is not None:
            add("training_mae", lambda: m.mean_absolute_error(y, predicted, **weights))
            add(
                "training_rmse",
                lambda: math.sqrt(m.mean_squared_error(y, predicted, **weights)),
            )
            add("training_r2", lambda: m.r2_score(y, predicted, **weights))
    if callable(getattr(estimator, "score", None)):
        add("training_score", lambda: _score(estimator, X, y, weights))
    return out


def _attempt(compute: Callable[[], Any]) -> Any:
    try:
        return compute()
    except Exception:
        logger.debug("autolog: prediction on the training data failed", exc_info=True)
        return None


def _classifier_metrics(
    estimator: Any,
    X: Any,
    y: Any,
    weights: dict[str, Any],
    add: Callable[[str, Callable[[], Any]], None],
    m: Any,
) -> None:
    import numpy as np
    from sklearn.utils.multiclass import type_of_target

    target = _attempt(lambda: type_of_target(y))
    classes = getattr(estimator, "classes_", None)
    predicted = _attempt(lambda: estimator.predict(X))
    if predicted is not None:
        add("training_accuracy", lambda: m.accuracy_score(y, predicted, **weights))
        if target == "binary":
            positive = {} if classes is None or len(classes) != 2 else {"pos_label": classes[1]}
            add("training_f1", lambda: m.f1_score(y, predicted, **positive, **weights))
        elif target == "multiclass":
            add("training_f1", lambda: m.f1_score(y, predicted, average="macro", **weights))
    if target not in ("binary", "multiclass") or not hasattr(estimator, "predict_proba"):
        return
    proba = _attempt(lambda: estimator.predict_proba(X))
    if proba is None:
        return
    labels = {} if classes is None else {"labels": classes}
    add("training_log_loss", lambda: m.log_loss(y, proba, **labels, **weights))
    if target == "binary" and classes is not None and len(classes) == 2:
        positive_rows = np.asarray(y) == classes[1]
        add("training_roc_auc", lambda: m.roc_auc_score(positive_rows, proba[:, 1], **weights))


def _score(estimator: Any, X: Any, y: Any, weights: dict[str, Any]) -> Any:
    if weights:
        with contextlib.suppress(TypeError, ValueError):
            if "sample_weight" in inspect.signature(estimator.score).parameters:
                return estimator.score(X, y, **weights)
    if y is None:
        return estimator.score(X)
    return estimator.score(X, y)
