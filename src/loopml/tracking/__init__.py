"""Experiment tracking: the explicit :class:`Client` and the fluent active-run API."""

from loopml.tracking.client import Client
from loopml.tracking.fluent import ActiveRun

__all__ = ["ActiveRun", "Client"]
