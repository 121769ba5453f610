"""The loopml tracking server: the store interface over HTTP (FastAPI), with token auth."""

from loopml.server.app import ServerConfig, create_app

__all__ = ["ServerConfig", "create_app"]
