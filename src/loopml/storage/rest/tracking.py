"""The remote store: tracking (filled in per resource)."""

from __future__ import annotations

from loopml.storage.rest.base import RestBase

__all__ = ["RestTrackingMixin"]


class RestTrackingMixin(RestBase):
    pass
