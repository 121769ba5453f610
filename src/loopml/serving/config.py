"""What ``loopml serve`` serves and how: one model from the command line, or several from a
YAML file (``loopml serve --config serving.yaml``).

.. code-block:: yaml

    models:
      - name: churn                       # the endpoint: /v2/models/churn, /predict/churn
        uri: models:/churn@champion       # an alias is followed: a move is a hot swap
        max_batch_size: 64                # rows merged into one predict call
        max_latency_ms: 0                 # extra wait for a fuller batch when idle (0: none)
        max_queue_rows: 4096              # rows waiting past this: 503 at once
        method: predict                   # or predict_proba
        canary: {uri: models:/churn/4, weight: 10, key: customer_id}
        shadow: models:/churn@challenger
    prediction_log: {enabled: true, max_rows: 50000, max_seconds: 60}
    limits: {max_body_mb: 10, max_rows: 10000}
    alias_poll_seconds: 5
    live_monitoring: true                 # monitors' current windows kept in memory

Every field is checked when the file is read; a mistake names its path in the file
(``models.0.max_batch_size: ...``) and what was expected.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from loopml.errors import InvalidArgumentError, MissingDependencyError
from loopml.models.uris import parse_model_uri

__all__ = [
    "CanaryConfig",
    "Limits",
    "ModelConfig",
    "PredictionLogConfig",
    "ServingConfig",
    "load_config",
    "parse_config",
    "single_model_config",
]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")

try:
    from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
except ImportError as exc:  # pragma: no cover - the serve extra brings pydantic
    raise MissingDependencyError(
        "loopml serve needs its extra: pip install 'loopml[serve]'", extra="serve"
    ) from exc


def _check_uri(value: Any) -> str:
    parse_model_uri(value)  # raises InvalidArgumentError naming what is wrong
    return str(value)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CanaryConfig(_Strict):
    """A second version taking ``weight`` percent of the traffic."""

    uri: str
    weight: float = Field(ge=0, le=100, description="percent of requests sent to the canary")
    key: str | None = Field(
        default=None,
        description="a record field or header (X-Loopml-Key) making the choice sticky",
    )

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        return _check_uri(value)


class ModelConfig(_Strict):
    """One served model (an endpoint)."""

    name: str
    uri: str
    max_batch_size: int = Field(default=64, ge=1, le=100_000)
    max_latency_ms: float = Field(default=0.0, ge=0, le=10_000)
    max_queue_rows: int = Field(default=4096, ge=1, le=10_000_000)
    method: Literal["predict", "predict_proba"] = "predict"
    trusted: bool = Field(
        default=False, description="allow model formats that can run code when loaded (pickle)"
    )
    canary: CanaryConfig | None = None
    shadow: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError(
                "expected 1-128 letters, digits, '_', '.' or '-', starting with a letter or digit"
            )
        return value

    @field_validator("uri", "shadow")
    @classmethod
    def _uris(cls, value: str | None) -> str | None:
        return None if value is None else _check_uri(value)


class PredictionLogConfig(_Strict):
    enabled: bool = True
    max_rows: int = Field(default=10_000, ge=1)
    max_seconds: float = Field(default=60.0, gt=0)
    max_pending_rows: int = Field(default=100_000, ge=1)


class Limits(_Strict):
    max_body_mb: float = Field(default=10.0, gt=0, le=4096)
    max_rows: int = Field(default=10_000, ge=1)

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)


class ServingConfig(_Strict):
    """Everything ``loopml serve`` needs besides the host, port and worker count."""

    models: tuple[ModelConfig, ...] = Field(min_length=1)
    prediction_log: PredictionLogConfig = PredictionLogConfig()
    limits: Limits = Limits()
    metrics: bool = True
    access_log: bool = Field(
        default=False, description="one JSON line per request on stderr (loopml.serving.access)"
    )
    auth: bool = False
    alias_poll_seconds: float = Field(default=5.0, gt=0, le=3600)
    live_monitoring: bool = Field(
        default=True,
        description="keep each monitor's current window in memory and export its drift "
        "(loopml_monitor_live_* in /metrics)",
    )

    @field_validator("models")
    @classmethod
    def _unique(cls, models: tuple[ModelConfig, ...]) -> tuple[ModelConfig, ...]:
        seen: set[str] = set()
        for model in models:
            if model.name in seen:
                raise ValueError(f"two models are named {model.name!r}; names must be unique")
            seen.add(model.name)
        return models


def _invalid(exc: ValidationError, source: str) -> InvalidArgumentError:
    problems = []
    errors = exc.errors()
    nested = any(len(e.get("loc", ())) > 1 for e in errors)
    for error in errors:
        if nested and error.get("type") == "too_short":
            continue  # "no models left" only because a model above was refused
        where = ".".join(str(part) for part in error.get("loc", ())) or "(top level)"
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    first = problems[0] if problems else "invalid"
    message = f"Invalid serving configuration ({source}): " + "; ".join(problems[:10])
    return InvalidArgumentError(message, field=first.split(":")[0], problems=problems)


def parse_config(data: Any, *, source: str = "configuration") -> ServingConfig:
    """A :class:`ServingConfig` from a plain mapping (as read from YAML or JSON)."""
    if not isinstance(data, dict):
        raise InvalidArgumentError(
            f"Invalid serving configuration ({source}): expected a mapping with 'models', "
            f"got {type(data).__name__}",
            field="config",
        )
    try:
        return ServingConfig.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc, source) from None


def load_config(path: str | Path) -> ServingConfig:
    """Read and check a serving YAML file."""
    import yaml

    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidArgumentError(
            f"Cannot read the serving configuration {str(path)!r}: {exc.strerror}",
            field="config",
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidArgumentError(
            f"The serving configuration {str(path)!r} is not valid YAML: {exc}", field="config"
        ) from None
    return parse_config(data, source=file.name)


def single_model_config(uri: str, *, name: str | None = None, **options: Any) -> ServingConfig:
    """The configuration of ``loopml serve MODEL_URI``: one model named after the registered
    model (or ``name``), with ``options`` for its batching and the server's defaults."""
    target = parse_model_uri(uri)
    model_options = {
        key: options.pop(key)
        for key in ("max_batch_size", "max_latency_ms", "max_queue_rows", "method", "trusted")
        if key in options and options[key] is not None
    }
    default_name = target.name or "model"
    data: dict[str, Any] = {
        "models": [{"name": name or default_name, "uri": uri, **model_options}],
        **{k: v for k, v in options.items() if v is not None},
    }
    return parse_config(data, source="command line")
