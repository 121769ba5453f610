"""Build the serving app in each worker process from options passed through the environment
(uvicorn starts workers by import path, so ``loopml serve`` cannot hand them objects)."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from starlette.applications import Starlette

from loopml.serving.app import create_app
from loopml.serving.config import ServingConfig, parse_config

__all__ = ["SERVE_ENV", "app_from_env", "build_app", "encode_options"]

SERVE_ENV = "LOOPML_SERVE_OPTIONS"

logger = logging.getLogger(__name__)


def encode_options(config: ServingConfig, *, tracking_uri: str | None) -> str:
    return json.dumps({"config": config.model_dump(mode="json"), "tracking_uri": tracking_uri})


def _prediction_log(config: ServingConfig, tracking_uri: str | None) -> Any:
    if not config.prediction_log.enabled:
        return None
    from loopml.serving.predlog import PredictionLog
    from loopml.storage.uris import open_store

    settings = config.prediction_log
    return PredictionLog(
        open_store(tracking_uri),
        max_rows=settings.max_rows,
        max_seconds=settings.max_seconds,
        max_pending_rows=settings.max_pending_rows,
    )


def build_app(config: ServingConfig, *, tracking_uri: str | None = None) -> Starlette:
    """The app ``loopml serve`` runs: ``config`` with its prediction log."""
    return create_app(
        config,
        tracking_uri=tracking_uri,
        prediction_log=_prediction_log(config, tracking_uri),
    )


def app_from_env() -> Starlette:
    """The app in every worker, from ``LOOPML_SERVE_OPTIONS``."""
    options = json.loads(os.environ.get(SERVE_ENV, "{}"))
    config = parse_config(options.get("config"), source=SERVE_ENV)
    return build_app(config, tracking_uri=options.get("tracking_uri"))
