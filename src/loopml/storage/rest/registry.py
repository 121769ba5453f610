"""The remote store: registry (filled in per resource)."""

from __future__ import annotations

from loopml.storage.rest.base import RestBase

__all__ = ["RestRegistryMixin"]


class RestRegistryMixin(RestBase):
    pass
