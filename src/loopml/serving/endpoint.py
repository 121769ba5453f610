"""One served model name: its live version(s), the traffic policy between them, and the hot
swap when an alias moves.

An :class:`Endpoint` holds up to three :class:`Deployment` s (a loaded model version with its
own :class:`~loopml.serving.batching.Batcher`):

* **primary**: the version the URI names. A URI with an alias (``models:/churn@champion``)
  or ``latest`` is *followed*: every ``alias_poll_seconds`` the registry is asked where it
  points; when it moved, the new version is loaded and warmed up in the background while the
  old one keeps answering, then the endpoint switches in one assignment and the old version
  finishes what it had queued. A version that fails to load is logged and counted; the old
  one keeps serving (RELIABILITY M2).
* **canary**: another version taking ``weight`` percent of the requests, by a hash of the
  request's key when one is given (sticky), else at random.
* **shadow**: a version that gets a copy of every request; its answers are logged, never
  returned, and nothing it does (errors, slowness, a full queue) touches the response.
"""

from __future__ import annotations

import asyncio
import logging
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from loopml.models.loaded import LoadedModel
from loopml.models.uris import parse_model_uri
from loopml.serving.batching import Batcher
from loopml.serving.config import ModelConfig
from loopml.serving.inputs import Batch

__all__ = ["Deployment", "Endpoint"]

logger = logging.getLogger(__name__)


def model_input(batch: Batch) -> Any:
    """What the model's predict takes for ``batch``: its tensor, a 2-D array when every
    column is a number of one dtype, else a DataFrame (built once per batch)."""
    if batch.tensor is not None:
        return batch.tensor
    columns = batch.columns or {}
    arrays = list(columns.values())
    if arrays and all(a.dtype.kind in "iuf" for a in arrays):
        dtype = np.result_type(*arrays)
        if all(a.dtype == dtype for a in arrays):
            return np.column_stack(arrays) if len(arrays) > 1 else arrays[0].reshape(-1, 1)
    import pandas as pd

    return pd.DataFrame(columns)


@dataclass(eq=False)
class Deployment:
    """One loaded model version and the queue in front of it."""

    endpoint: str
    role: str  # primary, canary or shadow
    uri: str
    version: int | None
    model: LoadedModel
    method: str = "predict"
    batcher: Batcher = field(init=False)
    #: whether a numeric 2-D array goes to the framework as it is (see :func:`_warm_up`)
    direct: bool = False

    @property
    def label(self) -> str:
        return "" if self.version is None else str(self.version)

    def predict(self, batch: Batch) -> Any:
        """Run in the batcher's worker thread."""
        data = model_input(batch)
        proba = self.method == "predict_proba"
        if self.direct and isinstance(data, np.ndarray):
            return self.model.predict_prepared(data, proba=proba)
        if proba:
            return self.model.predict_proba(data, enforce_signature=False)
        return self.model.predict(data, enforce_signature=False)


Loader = Callable[[str], tuple[LoadedModel, int | None, str]]
"""Loads a model URI: returns the model, its registry version (None outside the registry)
and the exact URI loaded (``models:/name/3`` for an alias)."""


class Endpoint:
    """A served model name (see the module docstring)."""

    def __init__(
        self,
        config: ModelConfig,
        loader: Loader,
        make_batcher: Callable[[ModelConfig, Deployment], Batcher],
        *,
        on_swap: Callable[[Deployment, Deployment | None], None] | None = None,
        on_load_failure: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self._loader = loader
        self._make_batcher = make_batcher
        self._on_swap = on_swap
        self._on_load_failure = on_load_failure
        self.primary: Deployment | None = None
        self.canary: Deployment | None = None
        self.shadow: Deployment | None = None
        self._failed: set[tuple[str, int | None]] = set()
        self.follows = parse_model_uri(config.uri).kind in ("alias", "latest")

    @property
    def ready(self) -> bool:
        return self.primary is not None and (self.config.canary is None or self.canary is not None)

    @property
    def signature(self) -> Any:
        return None if self.primary is None else self.primary.model.signature

    def deployments(self) -> list[Deployment]:
        return [d for d in (self.primary, self.canary, self.shadow) if d is not None]

    # ------------------------------------------------------------------------------ loading

    async def _deploy(self, uri: str, role: str) -> Deployment:
        model, version, exact = await asyncio.to_thread(self._loader, uri)
        deployment = Deployment(
            endpoint=self.name,
            role=role,
            uri=exact,
            version=version,
            model=model,
            method=self.config.method,
        )
        await asyncio.to_thread(_warm_up, deployment)
        deployment.batcher = self._make_batcher(self.config, deployment)
        return deployment

    async def start(self) -> None:
        """Load every version the configuration names (the endpoint is ready after)."""
        self.primary = await self._deploy(self.config.uri, "primary")
        if self.config.canary is not None:
            self.canary = await self._deploy(self.config.canary.uri, "canary")
        if self.config.shadow is not None:
            try:
                self.shadow = await self._deploy(self.config.shadow, "shadow")
            except Exception as exc:  # a shadow never stops the real model from serving
                logger.error(
                    "shadow %s of %s failed to load: %s", self.config.shadow, self.name, exc
                )
                if self._on_load_failure is not None:
                    self._on_load_failure(self.name, exc)
        if self._on_swap is not None:
            for deployment in self.deployments():
                self._on_swap(deployment, None)

    async def refresh(self, resolve: Callable[[str], int | None]) -> bool:
        """Follow the alias: load and switch to the version it names now. True if switched."""
        if not self.follows or self.primary is None:
            return False
        version = await asyncio.to_thread(resolve, self.config.uri)
        if version is None or version == self.primary.version:
            return False
        if (self.config.uri, version) in self._failed:
            return False
        target = parse_model_uri(self.config.uri)
        exact = f"models:/{target.name}/{version}"
        logger.info("%s: %s now names version %s; loading it", self.name, self.config.uri, version)
        try:
            new = await self._deploy(exact, "primary")
        except Exception as exc:
            self._failed.add((self.config.uri, version))
            logger.error(
                "%s: version %s failed to load (%s); version %s keeps serving",
                self.name,
                version,
                exc,
                self.primary.version,
            )
            if self._on_load_failure is not None:
                self._on_load_failure(self.name, exc)
            return False
        old, self.primary = self.primary, new  # the switch: one assignment
        logger.info("%s: now serving version %s (was %s)", self.name, new.version, old.version)
        if self._on_swap is not None:
            self._on_swap(new, old)
        await old.batcher.close(drain=True)
        return True

    async def close(self) -> None:
        for deployment in self.deployments():
            await deployment.batcher.close(drain=True)

    # ------------------------------------------------------------------------------ routing

    def choose(self, key: str | None) -> Deployment:
        """The deployment that answers a request (primary or canary)."""
        primary = self.primary
        assert primary is not None
        canary, spec = self.canary, self.config.canary
        if canary is None or spec is None or spec.weight <= 0:
            return primary
        if key is not None:
            bucket = zlib.crc32(key.encode("utf-8", "surrogatepass")) % 10_000
        else:
            bucket = random.randrange(10_000)
        return canary if bucket < spec.weight * 100 else primary

    def by_version(self, version: int) -> Deployment | None:
        for deployment in (self.primary, self.canary):
            if deployment is not None and deployment.version == version:
                return deployment
        return None


def _warm_up(deployment: Deployment) -> None:
    """One predict on the model's input example (when it has one), so the first request
    does not pay for lazy initialisation; a failure here fails the load.

    It also decides :attr:`Deployment.direct`: a numeric model fitted on a DataFrame gets
    the merged 2-D array as it is (no DataFrame per batch) when that gives exactly the
    answers of the checked path on the example; a model that needs its columns by name (a
    ColumnTransformer) keeps getting a DataFrame.
    """
    example = None
    model = deployment.model
    try:
        example = model.input_example
    except Exception:  # an example that cannot be read is no reason to refuse the model
        logger.warning("%s: the input example could not be read", deployment.endpoint)
    if example is None:
        return
    proba = deployment.method == "predict_proba"
    expected = model.predict_proba(example) if proba else model.predict(example)
    if model.signature is None:
        return
    try:
        from loopml.serving.inputs import check, parse_plain

        records = example.to_dict(orient="records") if hasattr(example, "to_dict") else example
        batch = check(parse_plain(records), model.signature, max_rows=len(expected) + 1)
        data = model_input(batch)
        if not isinstance(data, np.ndarray):
            return
        direct = model.predict_prepared(data, proba=proba)
    except Exception:  # the checked path it is
        return
    deployment.direct = bool(np.array_equal(np.asarray(direct), np.asarray(expected)))
