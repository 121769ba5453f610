"""The HTTP implementation of the store protocols (a client of ``loopml server``)."""

from loopml.storage.rest.store import RestStore

__all__ = ["RestStore"]
