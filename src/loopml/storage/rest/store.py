"""The remote store: every store protocol over a ``loopml server``'s REST API."""

from __future__ import annotations

from loopml.storage.rest.artifacts import RestArtifactsMixin
from loopml.storage.rest.datasets import RestDatasetsMixin
from loopml.storage.rest.monitors import RestMonitorsMixin
from loopml.storage.rest.predictions import RestPredictionsMixin
from loopml.storage.rest.registry import RestRegistryMixin
from loopml.storage.rest.tracking import RestTrackingMixin

__all__ = ["RestStore"]


class RestStore(
    RestTrackingMixin,
    RestArtifactsMixin,
    RestDatasetsMixin,
    RestRegistryMixin,
    RestPredictionsMixin,
    RestMonitorsMixin,
):
    """Implements :class:`~loopml.storage.protocols.TrackingStore` by calling a server.

    ``http(s)://host:port`` tracking URIs open one (see :mod:`loopml.storage.uris`); the
    token comes from ``LOOPML_TOKEN``.
    """
