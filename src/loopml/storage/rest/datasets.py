"""The remote store: datasets (filled in per resource)."""

from __future__ import annotations

from loopml.storage.rest.base import RestBase

__all__ = ["RestDatasetsMixin"]


class RestDatasetsMixin(RestBase):
    pass
