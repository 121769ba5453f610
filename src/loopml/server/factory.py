"""Build the app in each worker process from options passed through the environment
(uvicorn starts workers by import path, so ``loopml server`` cannot hand them objects)."""

from __future__ import annotations

import json
import os
from typing import Any

from fastapi import FastAPI

from loopml.server.app import ServerConfig, create_app

__all__ = ["APP_ENV", "app_from_env", "encode_options"]

APP_ENV = "LOOPML_SERVER_OPTIONS"


def encode_options(**options: Any) -> str:
    return json.dumps(options)


def app_from_env() -> FastAPI:
    """The app ``loopml server`` runs, in every worker."""
    from loopml.storage.uris import open_store

    options = json.loads(os.environ.get(APP_ENV, "{}"))
    store = open_store(options.get("backend_store"), options.get("artifacts"))
    config = ServerConfig(
        allowed_hosts=tuple(options.get("allowed_hosts", ())),
        cors_origins=tuple(options.get("cors_origins", ())),
        auth=bool(options.get("auth", False)),
        max_upload_bytes=int(options.get("max_upload_bytes", ServerConfig.max_upload_bytes)),
    )
    return create_app(store, config)
