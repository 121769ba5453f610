"""The remote store: artifacts (filled in per resource)."""

from __future__ import annotations

from loopml.storage.rest.base import RestBase

__all__ = ["RestArtifactsMixin"]


class RestArtifactsMixin(RestBase):
    pass
