"""Checks applied at the store boundary; every message names the field and what was expected."""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping
from typing import Any

from loopml.entities import MetricRow, RunStatus
from loopml.errors import InvalidArgumentError

__all__ = [
    "MAX_KEY_LENGTH",
    "MAX_VALUE_LENGTH",
    "metric_row",
    "validate_alias",
    "validate_dataset_name",
    "validate_dataset_version",
    "validate_experiment_id",
    "validate_experiment_name",
    "validate_input_context",
    "validate_key",
    "validate_metric_value",
    "validate_model_name",
    "validate_model_version",
    "validate_run_id",
    "validate_status",
    "validate_step",
    "validate_string_map",
    "validate_timestamp",
]

MAX_KEY_LENGTH = 500
MAX_VALUE_LENGTH = 8000
MAX_NAME_LENGTH = 500
_INT64 = 2**63 - 1
_RUN_ID = re.compile(r"[0-9a-f]{32}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def validate_key(kind: str, key: Any) -> str:
    """A param, metric or tag key: a non-empty string without control characters."""
    if not isinstance(key, str):
        raise InvalidArgumentError(
            f"The {kind} key must be a string. Got {type(key).__name__} {_short(key)} instead.",
            field=f"{kind}.key",
        )
    if not key or key.strip() != key:
        raise InvalidArgumentError(
            f"The {kind} key must be a non-empty string without leading or trailing "
            f"whitespace. Got {_short(key)} instead.",
            field=f"{kind}.key",
        )
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidArgumentError(
            f"The {kind} key must be at most {MAX_KEY_LENGTH} characters. "
            f"Got {len(key)} characters instead.",
            field=f"{kind}.key",
        )
    if _CONTROL.search(key):
        raise InvalidArgumentError(
            f"The {kind} key must not contain control characters. Got {_short(key)} instead.",
            field=f"{kind}.key",
        )
    return key


def validate_string_value(kind: str, key: str, value: Any) -> str:
    """Param and tag values are strings; numbers and booleans are converted, others refused."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool | int | float):
        text = str(value)
    else:
        raise InvalidArgumentError(
            f"The value of {kind} {key!r} must be a string, number or boolean. "
            f"Got {type(value).__name__} instead.",
            field=f"{kind}.{key}",
        )
    if len(text) > MAX_VALUE_LENGTH:
        raise InvalidArgumentError(
            f"The value of {kind} {key!r} must be at most {MAX_VALUE_LENGTH} characters. "
            f"Got {len(text)} characters instead.",
            field=f"{kind}.{key}",
        )
    if "\x00" in text:
        raise InvalidArgumentError(
            f"The value of {kind} {key!r} must not contain NUL characters.",
            field=f"{kind}.{key}",
        )
    return text


def validate_string_map(kind: str, values: Mapping[str, Any] | None) -> dict[str, str]:
    """Validate a mapping of params or tags, returning the normalised string values."""
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise InvalidArgumentError(
            f"The {kind}s must be a mapping of key to value. Got {type(values).__name__} instead.",
            field=f"{kind}s",
        )
    return {validate_key(kind, k): validate_string_value(kind, k, v) for k, v in values.items()}


def validate_metric_value(key: str, value: Any) -> float:
    """A metric value: a real number; NaN and ±inf are allowed and stored faithfully."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidArgumentError(
            f"The value of metric {key!r} must be a number. "
            f"Got {type(value).__name__} {_short(value)} instead.",
            field=f"metric.{key}",
        )
    try:
        return float(value)
    except OverflowError:
        raise InvalidArgumentError(
            f"The value of metric {key!r} is too large for a 64-bit float.",
            field=f"metric.{key}",
        ) from None


def validate_step(key: str, step: Any) -> int:
    """A metric step: an integer that fits in 64 bits (integral floats are accepted)."""
    if isinstance(step, float) and step.is_integer():
        step = int(step)
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise InvalidArgumentError(
            f"The step of metric {key!r} must be an integer. Got {_short(step)} instead.",
            field=f"metric.{key}.step",
        )
    step = int(step)
    if not -_INT64 <= step <= _INT64:
        raise InvalidArgumentError(
            f"The step of metric {key!r} must fit in 64 bits. Got {step} instead.",
            field=f"metric.{key}.step",
        )
    return step


def validate_timestamp(field: str, value: Any) -> int:
    """A timestamp in milliseconds since the epoch."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgumentError(
            f"The {field} must be milliseconds since the epoch (an integer). "
            f"Got {_short(value)} instead.",
            field=field,
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidArgumentError(f"The {field} must be finite. Got {value}.", field=field)
    value = int(value)
    if not 0 <= value <= _INT64:
        raise InvalidArgumentError(
            f"The {field} must be a non-negative 64-bit integer. Got {value}.", field=field
        )
    return value


def validate_run_id(run_id: Any) -> str:
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise InvalidArgumentError(
            "The run_id must be 32 lowercase hexadecimal characters. "
            f"Got {_short(run_id)} instead.",
            field="run_id",
        )
    return run_id


def validate_experiment_id(experiment_id: Any) -> str:
    """Experiment ids are decimal strings of ASCII digits (ints are accepted too); returns
    the id as text. The SQL store and the remote client both check ids with it."""
    text = str(experiment_id) if isinstance(experiment_id, int | str) else ""
    if isinstance(experiment_id, bool) or not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise InvalidArgumentError(
            f"The experiment_id must be a string of digits. Got {experiment_id!r} instead.",
            field="experiment_id",
        )
    return text


def validate_experiment_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgumentError(
            f"The experiment name must be a non-empty string. Got {_short(name)} instead.",
            field="name",
        )
    if name.strip() != name:
        raise InvalidArgumentError(
            f"The experiment name must not start or end with whitespace. Got {_short(name)}.",
            field="name",
        )
    if len(name) > MAX_NAME_LENGTH or _CONTROL.search(name):
        raise InvalidArgumentError(
            f"The experiment name must be at most {MAX_NAME_LENGTH} characters without control "
            f"characters. Got {_short(name)} instead.",
            field="name",
        )
    return name


_DATASET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_CONTEXT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._ -]{0,63}")


def validate_dataset_name(name: Any) -> str:
    """Dataset names appear in references such as ``customers@v3`` and in folder names."""
    if not isinstance(name, str) or not _DATASET_NAME.fullmatch(name):
        raise InvalidArgumentError(
            "The dataset name must be 1 to 128 characters: letters, digits, '.', '_' and '-', "
            f"starting with a letter or digit. Got {_short(name)} instead.",
            field="name",
        )
    return name


def validate_dataset_version(version: Any) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version < 2**31:
        raise InvalidArgumentError(
            f"The dataset version must be a positive integer. Got {_short(version)} instead.",
            field="version",
        )
    return version


_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,255}")
_ALIAS = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,255}")
_VERSION_LIKE = re.compile(r"v?[0-9]+", re.IGNORECASE)


def validate_model_name(name: Any) -> str:
    """Registered model names appear in URIs such as ``models:/churn@champion``."""
    if not isinstance(name, str) or not _MODEL_NAME.fullmatch(name):
        raise InvalidArgumentError(
            "The model name must be 1 to 256 characters: letters, digits, '.', '_' and '-', "
            f"starting with a letter or digit. Got {_short(name)} instead.",
            field="name",
        )
    return name


def validate_model_version(version: Any) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version < 2**31:
        raise InvalidArgumentError(
            f"The model version must be a positive integer. Got {_short(version)} instead.",
            field="version",
        )
    return version


def validate_alias(alias: Any) -> str:
    """Aliases (``champion``, ``challenger``...) must not look like a version number."""
    if (
        not isinstance(alias, str)
        or not _ALIAS.fullmatch(alias)
        or _VERSION_LIKE.fullmatch(alias)
        or alias.lower() == "latest"
    ):
        raise InvalidArgumentError(
            "The alias must be 1 to 256 characters: letters, digits, '_', '.' and '-', starting "
            "with a letter or '_', and not a version such as 'v3' or the word 'latest'. "
            f"Got {_short(alias)} instead.",
            field="alias",
        )
    return alias


def validate_input_context(context: Any) -> str:
    """The role a dataset played in a run: ``training``, ``evaluation``, ..."""
    if not isinstance(context, str) or not _CONTEXT.fullmatch(context):
        raise InvalidArgumentError(
            "The input context must be 1 to 64 characters: letters, digits, spaces, '.', '_' "
            f"and '-'. Got {_short(context)} instead.",
            field="context",
        )
    return context


def metric_row(
    run_id: str, key: Any, value: Any, step: Any, timestamp: Any, valid_keys: set[str]
) -> MetricRow:
    """Validate one metric point and return it as a stored row (NaN as 0.0 with is_nan).

    This runs once per logged point, so values of the exact expected types pass a few type
    checks and nothing more; anything else goes through the full validators. ``valid_keys``
    remembers keys already checked (the caller keeps it across calls).
    """
    if key not in valid_keys:
        valid_keys.add(validate_key("metric", key))
    if type(value) is not float:
        value = validate_metric_value(key, value)
    if type(step) is not int or not -_INT64 <= step <= _INT64:
        step = validate_step(key, step)
    if type(timestamp) is not int or not 0 <= timestamp <= _INT64:
        timestamp = validate_timestamp(f"timestamp of metric {key!r}", timestamp)
    if value != value:  # NaN
        return (run_id, key, step, timestamp, 0.0, True)
    return (run_id, key, step, timestamp, value, False)


def validate_status(status: Any, *, terminal: bool = False) -> RunStatus:
    """A run status, in any case; with ``terminal=True`` it must be one a run can end with."""
    try:
        parsed = RunStatus(str(status).upper())
    except ValueError:
        parsed = None
    if parsed is not None and not (terminal and parsed is RunStatus.RUNNING):
        return parsed
    allowed = "FINISHED, FAILED or KILLED" if terminal else ", ".join(s.value for s in RunStatus)
    adjective = "final status" if terminal else "status"
    raise InvalidArgumentError(
        f"The {adjective} must be one of {allowed}. Got {status!r} instead.", field="status"
    )
