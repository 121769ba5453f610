"""The inference server's ASGI app (Starlette): ``create_app(config)``.

Routes (``{model}`` is a served name from the configuration):

====================================================  =========================================
``POST /v2/models/{model}/infer``                      Open Inference Protocol (KServe V2)
``POST /v2/models/{model}/versions/{v}/infer``         the same, one explicit version
``GET /v2/health/live``, ``/v2/health/ready``          server health (ready: every model loaded)
``GET /v2/models/{model}[/versions/{v}]``              model metadata (inputs, outputs, versions)
``GET /v2/models/{model}[/versions/{v}]/ready``        model readiness
``GET /v2``                                            server metadata
``POST /predict/{model}``                              plain JSON: records, columns or a 2-D array
``POST /invocations``, ``GET /ping``                   MLflow's scoring protocol (one model, or
                                                       ``?model=NAME``)
``POST /feedback/{model}``                             ground-truth labels by request id
``GET /metrics``                                       Prometheus
====================================================  =========================================

Every answer carries ``X-Request-ID`` (the client's, when it sent a valid one) and, for a
prediction, ``X-Loopml-Model-Version``: which version answered. A request the model cannot
take gets 400 (413 for a body or a row count over the limits) with every problem listed and
never reaches the model; a full queue gets 503 with ``Retry-After`` at once; only a failure
inside the model is a 500, with an incident id (the traceback goes to the log). With
``auth``, every route but health, readiness and metrics needs a bearer token of the tracking
store (reader for predictions, writer for feedback), checked once a minute per token.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import os
import re
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from loopml.errors import InvalidArgumentError, LoopmlError, NotFoundError
from loopml.models.loaded import LoadedModel
from loopml.serving.batching import Batcher, OnAnswer, Overloaded
from loopml.serving.config import ModelConfig, ServingConfig
from loopml.serving.endpoint import Deployment, Endpoint
from loopml.serving.inputs import (
    V2_DATATYPE,
    V2_OF_DTYPE,
    Batch,
    InputError,
    Payload,
    check,
    parse_mlflow,
    parse_plain,
    parse_v2,
)
from loopml.serving.live import LiveMonitors, input_names
from loopml.serving.metrics import ServingMetrics

__all__ = ["ServingApp", "create_app"]

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("loopml.serving.access")

#: the garbage collector's first threshold while the server runs (Python's default: 700)
_GC_YOUNG = 50_000
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

# the server hands scikit-learn models fitted on a DataFrame a 2-D array in the signature's
# column order (checked per request; see endpoint._warm_up): its warning about the missing
# names is expected here, and would otherwise be printed for every batch
warnings.filterwarnings("ignore", message="X does not have valid feature names")
_JSON = "application/json"
_TOKEN_CACHE_SECONDS = 60.0
#: how often the monitors' latest windows are read for /metrics
_MONITOR_SECONDS = 30.0


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS),
        status_code=status,
        media_type=_JSON,
        headers=headers,
    )


class _Refusal(Exception):
    """An answer other than a prediction, raised from deep in a handler."""

    def __init__(self, status: int, code: str, message: str, kind: str, **details: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.kind = status, code, message, kind
        self.details = details
        self.headers: dict[str, str] = {}


class ServingApp:
    """The server's state: endpoints, metrics, prediction log, token checks."""

    def __init__(
        self,
        config: ServingConfig,
        *,
        store: Any = None,
        tracking_uri: str | None = None,
        loader: Callable[[str], tuple[LoadedModel, int | None, str]] | None = None,
        resolver: Callable[[str], int | None] | None = None,
        prediction_log: Any = None,
    ) -> None:
        self.config = config
        self.tracking_uri = tracking_uri
        self._store = store
        self._loader = loader or self._load
        self._resolver = resolver or self._resolve
        self.metrics = ServingMetrics(self._live_state)
        self.prediction_log = prediction_log
        self.endpoints = {
            m.name: Endpoint(
                m,
                self._loader,
                self._make_batcher,
                on_swap=self._swapped,
                on_load_failure=lambda name, _exc: self.metrics.load_failures.labels(name).inc(),
            )
            for m in config.models
        }
        self._tokens: dict[str, tuple[float, Any]] = {}
        self._follower: asyncio.Task[None] | None = None
        self._shadow_tasks: set[asyncio.Task[Any]] = set()
        self.started = False
        #: the latest window of every monitor of a served model (exported in /metrics)
        self.monitor_summaries: list[dict[str, Any]] = []
        self._monitors_read = 0.0
        #: the current windows of those monitors, folded as requests are served
        self.live = LiveMonitors() if config.live_monitoring else None
        self._gc_threshold: tuple[int, ...] | None = None  # the one to restore on stop

    # ------------------------------------------------------------------------------ store

    @property
    def store(self) -> Any:
        if self._store is None:
            from loopml.storage.uris import open_store

            self._store = open_store(self.tracking_uri)
        return self._store

    def _load(self, uri: str) -> tuple[LoadedModel, int | None, str]:
        from loopml import models
        from loopml.models.uris import parse_model_uri

        target = parse_model_uri(uri)
        version: int | None = None
        exact = uri
        if target.kind in ("alias", "latest", "version"):
            version = self._resolve(uri)
            exact = f"models:/{target.name}/{version}"
        trusted = next((m.trusted for m in self.config.models if uri in _uris(m)), False)
        model = models.load(exact, trusted=trusted, tracking_uri=self.tracking_uri)
        return model, version, exact

    def _resolve(self, uri: str) -> int | None:
        from loopml import registry
        from loopml.models.uris import parse_model_uri

        target = parse_model_uri(uri)
        if target.kind == "version":
            return target.version
        if target.name is None:
            return None
        ref: int | str = target.alias or "latest"
        return registry.get_version(target.name, ref, tracking_uri=self.tracking_uri).version

    def _make_batcher(self, config: ModelConfig, deployment: Deployment) -> Batcher:
        name, label = config.name, deployment.label

        def on_batch(rows: int, wait: float, took: float) -> None:
            self.metrics.observe_batch(name, label, rows, wait, took)

        return Batcher(
            deployment.predict,
            max_batch_size=config.max_batch_size,
            max_latency_ms=config.max_latency_ms,
            max_queue_rows=config.max_queue_rows,
            on_batch=on_batch,
            on_answer=self._on_answer(deployment),
            name=name,
        )

    def _on_answer(self, deployment: Deployment) -> OnAnswer | None:
        """What a deployment's batcher tells about each predict call it answered: the
        prediction log gets the call's requests at once (a shadow's answers go under
        ``<model>.shadow``, apart from what clients received) and the live monitor windows
        get the rows clients received. Neither blocks; the batcher logs and ignores what they
        raise, so a request never fails for them."""
        log, live = self.prediction_log, self.live
        shadow = deployment.role == "shadow"
        if log is None and (live is None or shadow):
            return None
        model = f"{deployment.endpoint}.shadow" if shadow else deployment.endpoint
        version = deployment.version

        def on_answer(ids: list[str | None], rows: list[int], batch: Batch, output: Any) -> None:
            if live is not None and not shadow:  # queued for the live monitors' thread
                live.observe(deployment.endpoint, batch.columns, batch.rows, output)
            if log is None:
                return
            inputs = batch.columns if batch.columns is not None else {"input": batch.tensor}
            outputs = output if isinstance(output, dict) else {"prediction": output}
            log.log_batch(
                ids,  # type: ignore[arg-type] # every route gives its request id
                rows,
                model,
                version,
                inputs,
                outputs,
                int(time.time() * 1000),
            )

        return on_answer

    def _swapped(self, new: Deployment, old: Deployment | None) -> None:
        if old is not None:
            with contextlib.suppress(KeyError):
                self.metrics.model_info.remove(old.endpoint, old.label, old.role, old.uri)
        self.metrics.model_info.labels(new.endpoint, new.label, new.role, new.uri).set(1)

    def _live_state(self) -> dict[str, Any]:
        queues = {}
        for endpoint in self.endpoints.values():
            for d in endpoint.deployments():
                queues[(endpoint.name, d.label, d.role)] = d.batcher.queued_rows
        log = self.prediction_log
        counters = None
        if log is not None:
            counters = {
                name: getattr(log, name, 0)
                for name in ("logged_rows", "dropped_rows", "written_segments", "failed_segments")
            }
        return {
            "queues": queues,
            "prediction_log": counters,
            "monitors": self.monitor_summaries,
            "live": None if self.live is None else self.live.snapshot(),
        }

    # ------------------------------------------------------------------------------ life

    async def start(self) -> None:
        """Load every model (concurrently), then follow aliases in the background."""
        if self.config.auth and not hasattr(self.store, "verify_token"):
            raise InvalidArgumentError(
                "auth checks tokens in the tracking store's database: point the model server "
                "at that store (sqlite:// or postgresql://), not at a tracking server URL.",
                field="auth",
            )
        await asyncio.gather(*(e.start() for e in self.endpoints.values()))
        # the models and libraries loaded so far live as long as the server: keep them out of
        # the garbage collector's scans (full collections otherwise stall requests for tens
        # of milliseconds: the p99 latency). No collection first: it found ~10 unreachable
        # objects after a model load and took 0.1-0.2 s of the cold start.
        gc.freeze()
        # a request allocates hundreds of short-lived objects: the default first threshold
        # (700) ran a young collection every few requests
        self._gc_threshold = gc.get_threshold()
        gc.set_threshold(_GC_YOUNG, *self._gc_threshold[1:])
        if self.live is not None:
            self.live.start()
            try:
                await asyncio.to_thread(self.read_live_monitors)
            except Exception:
                logger.exception("reading the monitors for the live windows failed")
        self.started = True
        self._follower = asyncio.get_running_loop().create_task(self._follow())

    def read_monitors(self) -> None:
        """Refresh :attr:`monitor_summaries` from the store (monitors of served models)."""
        store = self.store
        if not hasattr(store, "list_monitors"):
            return
        served = set(self.endpoints)
        summaries = []
        for monitor in store.list_monitors():
            if monitor.spec.get("model") not in served:
                continue
            results = store.list_monitor_results(monitor.name, late=False, limit=1, newest=True)
            if results:
                summaries.append(results[-1].summary)
        self.monitor_summaries = summaries

    def read_live_monitors(self) -> None:
        """Start a live window for each new monitor of a served model, drop those of deleted
        monitors (see :mod:`loopml.serving.live`)."""
        store = self.store
        if self.live is None or not hasattr(store, "list_monitors"):
            return
        inputs = {name: input_names(e.signature) for name, e in self.endpoints.items()}
        self.live.refresh(store, inputs)

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self.config.alias_poll_seconds)
            if time.monotonic() - self._monitors_read >= _MONITOR_SECONDS:
                self._monitors_read = time.monotonic()
                try:
                    await asyncio.to_thread(self.read_monitors)
                except Exception:
                    logger.exception("reading the monitors' latest windows failed")
                if self.live is not None:
                    try:
                        await asyncio.to_thread(self.read_live_monitors)
                    except Exception:
                        logger.exception("reading the monitors for the live windows failed")
            for endpoint in self.endpoints.values():
                try:
                    await endpoint.refresh(self._resolver)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("checking the alias of %s failed", endpoint.name)

    async def stop(self) -> None:
        """Finish what is queued, then write what the prediction log holds."""
        if self._gc_threshold is not None:
            gc.set_threshold(*self._gc_threshold)
            self._gc_threshold = None
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower
        for endpoint in self.endpoints.values():
            await endpoint.close()
        if self._shadow_tasks:
            await asyncio.gather(*self._shadow_tasks, return_exceptions=True)
        if self.prediction_log is not None:
            await asyncio.to_thread(self.prediction_log.close)
        if self.live is not None:
            await asyncio.to_thread(self.live.close)

    # ------------------------------------------------------------------------------ checks

    def endpoint(self, name: str) -> Endpoint:
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            raise _Refusal(
                404,
                "NOT_FOUND",
                f"No model {name!r} is served here; served: {sorted(self.endpoints)}.",
                "not_found",
            )
        if not endpoint.ready:
            raise _Refusal(503, "NOT_READY", f"Model {name!r} is still loading.", "not_ready")
        return endpoint

    async def authorize(self, request: Request, model: str, *, write: bool = False) -> str | None:
        """The token's name, when auth is on (401/403 otherwise)."""
        if not self.config.auth:
            return None
        header = request.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret:
            refusal = _Refusal(
                401,
                "UNAUTHENTICATED",
                "This server needs a bearer token (Authorization: Bearer <token>).",
                "unauthorized",
            )
            refusal.headers["WWW-Authenticate"] = "Bearer"
            raise refusal
        token = await self._token(secret.strip())
        if token is None:
            refusal = _Refusal(401, "UNAUTHENTICATED", "Unknown or revoked token.", "unauthorized")
            refusal.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
            raise refusal
        role = str(getattr(token.role, "value", token.role))
        if write and role == "reader":
            raise _Refusal(
                403,
                "PERMISSION_DENIED",
                f"Token {token.name!r} is a reader; sending feedback needs a writer.",
                "unauthorized",
            )
        scoped = tuple(getattr(token.scopes, "models", ()) or ())
        if scoped and model not in scoped:
            raise _Refusal(
                403,
                "PERMISSION_DENIED",
                f"Token {token.name!r} may not use model {model!r}.",
                "unauthorized",
            )
        return str(token.name)

    async def _token(self, secret: str) -> Any:
        now = time.monotonic()
        cached = self._tokens.get(secret)
        if cached is not None and cached[0] > now:
            return cached[1]
        token = await asyncio.to_thread(self.store.verify_token, secret)
        if len(self._tokens) > 10_000:
            self._tokens.clear()
        self._tokens[secret] = (now + _TOKEN_CACHE_SECONDS, token)
        return token

    async def read_json(self, request: Request) -> Any:
        limit = self.config.limits.max_body_bytes
        kind = (_header(request, b"content-type") or _JSON).split(";")[0].strip().lower()
        if kind not in (_JSON, "", "application/*", "*/*", "text/json"):
            raise _Refusal(
                415,
                "UNSUPPORTED_MEDIA_TYPE",
                f"Send JSON (Content-Type: application/json), not {kind!r}.",
                "invalid_input",
            )
        length = _header(request, b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise self._too_large(int(length))
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise self._too_large(size)
            chunks.append(chunk)
        try:
            return orjson.loads(b"".join(chunks))
        except orjson.JSONDecodeError as exc:
            raise _Refusal(
                400, "INVALID_JSON", f"The body is not JSON: {exc}", "invalid_input"
            ) from None

    def _too_large(self, size: int) -> _Refusal:
        limit = self.config.limits.max_body_bytes
        return _Refusal(
            413,
            "PAYLOAD_TOO_LARGE",
            f"The body is {size:,} bytes or more; this server takes at most {limit:,}.",
            "too_large",
            limit=limit,
        )

    # ------------------------------------------------------------------------------ predict

    async def predict(
        self,
        request: Request,
        name: str,
        parse: Callable[[Any, Any], Payload],
        *,
        version: int | None = None,
        request_id: str,
    ) -> tuple[Deployment, Batch, Any]:
        endpoint = self.endpoint(name)
        await self.authorize(request, name)
        body = await self.read_json(request)
        if version is not None:
            deployment = endpoint.by_version(version)
            if deployment is None:
                served = [d.version for d in (endpoint.primary, endpoint.canary) if d]
                raise _Refusal(
                    404,
                    "NOT_FOUND",
                    f"Model {name!r} has no version {version} loaded; loaded: {served}.",
                    "not_found",
                )
        else:
            deployment = endpoint.choose(_sticky_key(request, body, endpoint.config))
        deployment.batcher.refuse_if_full()  # shed load before parsing and checking
        payload = parse(body, deployment.model.signature)
        batch = check(payload, deployment.model.signature, max_rows=self.config.limits.max_rows)
        # the batcher hands each answered call to the prediction log and the live monitors
        output = await deployment.batcher.submit(batch, request_id)
        shadow = endpoint.shadow if version is None else None
        if shadow is not None:
            self._copy_to_shadow(shadow, batch, request_id)
        return deployment, batch, output

    def _copy_to_shadow(self, shadow: Deployment, batch: Batch, request_id: str) -> None:
        async def run() -> None:
            try:
                await shadow.batcher.submit(batch, request_id)  # logged by its batcher
            except Exception as exc:
                self.metrics.shadow_errors.labels(shadow.endpoint, shadow.label).inc()
                logger.info("shadow %s %s failed: %s", shadow.endpoint, shadow.label, exc)

        task = asyncio.get_running_loop().create_task(run())
        self._shadow_tasks.add(task)
        task.add_done_callback(self._shadow_tasks.discard)


def _uris(model: ModelConfig) -> set[str]:
    uris = {model.uri}
    if model.canary is not None:
        uris.add(model.canary.uri)
    if model.shadow is not None:
        uris.add(model.shadow)
    return uris


def _sticky_key(request: Request, body: Any, config: ModelConfig) -> str | None:
    key = _header(request, b"x-loopml-key")
    if key is not None or config.canary is None or config.canary.key is None:
        return key
    field = config.canary.key
    record = body[0] if isinstance(body, list) and body else body
    if isinstance(record, dict):
        for wrapper in ("records", "dataframe_records", "instances"):
            inner = record.get(wrapper)
            if isinstance(inner, list) and inner and isinstance(inner[0], dict):
                record = inner[0]
                break
        value = record.get(field)
        if value is not None:
            return str(value)
    return None


class _RequestIds:
    """Request ids: 32 hex digits, a random prefix per process (drawn again in a forked
    worker) and a counter, unique like a random UUID at a fraction of its cost (no system
    call per request)."""

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.counter = itertools.count()

    def __call__(self) -> str:
        return f"{self.prefix}{next(self.counter) & 0xFFFFFFFFFFFFFFFF:016x}"


_new_request_id = _RequestIds()


def _header(request: Request, name: bytes) -> str | None:
    """One request header (``name`` lowercase), read from the ASGI scope without building
    Starlette's ``Headers`` for the request."""
    for key, value in request.scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _request_id(request: Request, body_id: Any = None) -> str:
    for candidate in (_header(request, b"x-request-id"), body_id):
        if isinstance(candidate, str) and _REQUEST_ID.fullmatch(candidate):
            return candidate
    return _new_request_id()


def _v2_outputs(output: Any) -> list[dict[str, Any]]:
    items = output.items() if isinstance(output, dict) else (("predict", output),)
    out = []
    for name, value in items:
        array = value if type(value) is np.ndarray else np.asarray(value)
        if array.dtype.kind in "OUS":
            datatype = "BYTES"
            data: Any = [str(v) for v in array.reshape(-1).tolist()]
        else:
            datatype = V2_OF_DTYPE.get(array.dtype, "BYTES")
            data = array if array.ndim == 1 else array.reshape(-1)
        out.append({"name": name, "datatype": datatype, "shape": list(array.shape), "data": data})
    return out


def _plain(output: Any) -> Any:
    if isinstance(output, dict):
        return {k: np.asarray(v).tolist() for k, v in output.items()}
    array = np.asarray(output)
    return array.tolist() if array.dtype.kind in "OUSM" else array


# ---------------------------------------------------------------------------- the app


def create_app(
    config: ServingConfig,
    *,
    store: Any = None,
    tracking_uri: str | None = None,
    loader: Callable[[str], tuple[LoadedModel, int | None, str]] | None = None,
    resolver: Callable[[str], int | None] | None = None,
    prediction_log: Any = None,
) -> Starlette:
    """The inference app for ``config``. Models load when the app starts (its lifespan);
    ``store``/``tracking_uri`` say where the registry and tokens are (default: the tracking
    URI in effect); ``prediction_log`` receives every answered request (built from the
    configuration by ``loopml serve``)."""
    state = ServingApp(
        config,
        store=store,
        tracking_uri=tracking_uri,
        loader=loader,
        resolver=resolver,
        prediction_log=prediction_log,
    )

    async def handle(
        request: Request,
        name: str,
        protocol: str,
        answer: Callable[[Deployment, Batch, Any, str], Any],
        parse: Callable[[Any, Any], Payload],
        version: int | None = None,
    ) -> Response:
        started = time.perf_counter()
        request_id = _request_id(request)
        headers = {"X-Request-ID": request_id}
        try:
            deployment, batch, output = await state.predict(
                request, name, parse, version=version, request_id=request_id
            )
        except Exception as exc:
            return _failure(state, exc, name, protocol, headers, started)
        headers["X-Loopml-Model-Version"] = deployment.label
        response = _json(answer(deployment, batch, output, request_id), headers=headers)
        took = time.perf_counter() - started
        state.metrics.observe_request(name, deployment.label, protocol, 200, took)
        if access_logger.isEnabledFor(logging.INFO):
            _access(request_id, name, deployment.label, protocol, 200, batch.rows, took)
        return response

    def v2_answer(d: Deployment, _b: Batch, output: Any, request_id: str) -> Any:
        return {
            "model_name": d.endpoint,
            "model_version": d.label,
            "id": request_id,
            "outputs": _v2_outputs(output),
        }

    def plain_answer(d: Deployment, _b: Batch, output: Any, request_id: str) -> Any:
        return {
            "predictions": _plain(output),
            "model": d.endpoint,
            "version": d.version,
            "request_id": request_id,
        }

    def mlflow_answer(_d: Deployment, _b: Batch, output: Any, _request_id: str) -> Any:
        return {"predictions": _plain(output)}

    def plain_parse(body: Any, _signature: Any) -> Payload:
        return parse_plain(body)

    def mlflow_parse(body: Any, _signature: Any) -> Payload:
        return parse_mlflow(body)

    async def v2_infer(request: Request) -> Response:
        name = request.path_params["model"]
        version = _version_param(request)
        if isinstance(version, Response):
            return version
        return await handle(request, name, "v2", v2_answer, parse_v2, version)

    async def plain_predict(request: Request) -> Response:
        return await handle(
            request, request.path_params["model"], "plain", plain_answer, plain_parse
        )

    async def invocations(request: Request) -> Response:
        name = request.query_params.get("model")
        if name is None:
            if len(state.endpoints) != 1:
                return _json(
                    {
                        "error_code": "INVALID_ARGUMENT",
                        "message": "Several models are served: name one with ?model=NAME "
                        f"({sorted(state.endpoints)}).",
                    },
                    400,
                )
            name = next(iter(state.endpoints))
        return await handle(request, name, "mlflow", mlflow_answer, mlflow_parse)

    async def feedback(request: Request) -> Response:
        name = request.path_params["model"]
        started = time.perf_counter()
        try:
            state.endpoint(name)
            await state.authorize(request, name, write=True)
            body = await state.read_json(request)
            items = _feedback_items(body)
            log = state.prediction_log
            if log is None:
                raise _Refusal(
                    409,
                    "PREDICTION_LOG_OFF",
                    "The prediction log is switched off on this server; feedback has nowhere "
                    "to go.",
                    "invalid_input",
                )
            now = int(time.time() * 1000)
            accepted = 0
            for request_id, label in items:
                labels = label if isinstance(label, dict) else {"label": label}
                arrays = {
                    k: np.asarray(v if isinstance(v, list) else [v]) for k, v in labels.items()
                }
                if log.log_feedback(
                    request_id=request_id, model=name, labels=arrays, timestamp_ms=now
                ):
                    accepted += 1
        except Exception as exc:
            return _failure(state, exc, name, "feedback", {}, started)
        return _json({"accepted": accepted, "dropped": len(items) - accepted}, 202)

    async def live(_request: Request) -> Response:
        return _json({"live": True})

    async def ready(_request: Request) -> Response:
        ok = state.started and all(e.ready for e in state.endpoints.values())
        return _json({"ready": ok}, 200 if ok else 503)

    async def ping(_request: Request) -> Response:
        ok = state.started and all(e.ready for e in state.endpoints.values())
        return Response("\n", status_code=200 if ok else 503, media_type="application/json")

    async def server_metadata(_request: Request) -> Response:
        from loopml._version import __version__

        return _json({"name": "loopml", "version": __version__, "extensions": []})

    async def model_metadata(request: Request) -> Response:
        try:
            endpoint = state.endpoint(request.path_params["model"])
        except _Refusal as refusal:
            return _json({"error": refusal.message}, refusal.status)
        version = _version_param(request)
        if isinstance(version, Response):
            return version
        deployment = endpoint.primary if version is None else endpoint.by_version(version)
        if deployment is None:
            return _json({"error": f"Version {version} is not loaded."}, 404)
        return _json(_metadata(endpoint, deployment))

    async def model_ready(request: Request) -> Response:
        endpoint = state.endpoints.get(request.path_params["model"])
        if endpoint is None:
            return _json({"error": "unknown model"}, 404)
        version = _version_param(request)
        if isinstance(version, Response):
            return version
        ok = endpoint.ready and (version is None or endpoint.by_version(version) is not None)
        return _json({"name": endpoint.name, "ready": ok}, 200 if ok else 503)

    async def metrics(_request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await state.start()
        try:
            yield
        finally:
            await state.stop()

    routes = [
        Route("/v2/health/live", live),
        Route("/v2/health/ready", ready),
        Route("/v2", server_metadata),
        Route("/v2/models/{model}", model_metadata),
        Route("/v2/models/{model}/ready", model_ready),
        Route("/v2/models/{model}/infer", v2_infer, methods=["POST"]),
        Route("/v2/models/{model}/versions/{version}", model_metadata),
        Route("/v2/models/{model}/versions/{version}/ready", model_ready),
        Route("/v2/models/{model}/versions/{version}/infer", v2_infer, methods=["POST"]),
        Route("/predict/{model}", plain_predict, methods=["POST"]),
        Route("/invocations", invocations, methods=["POST"]),
        Route("/ping", ping),
        Route("/health", ping),
        Route("/feedback/{model}", feedback, methods=["POST"]),
    ]
    if config.metrics:
        routes.append(Route("/metrics", metrics))
    if config.access_log:
        _enable_access_log()
    fast: dict[str, Callable[[Request], Any]] = {
        "predict": plain_predict,
        "v2": v2_infer,
        "invocations": invocations,
    }
    app = _ServingStarlette(fast, routes=routes, lifespan=lifespan)
    app.state.serving = state
    return app


class _ServingStarlette(Starlette):
    """Starlette with a short way in for the prediction routes.

    A ``POST`` to ``/predict/{model}``, ``/v2/models/{model}[/versions/{version}]/infer`` or
    ``/invocations`` goes straight to its handler, which answers every outcome itself (its
    errors included); the generic stack (error middlewares, matching each route's pattern in
    turn) costs about as much as parsing the request, so everything else still goes through
    it, and so do these paths when the app is mounted under a root path.
    """

    def __init__(self, fast: dict[str, Callable[[Request], Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: the handler of each kind of prediction route (see :func:`_fast_route`)
        self.fast = fast

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            found = _fast_route(scope["path"])
            if found is not None:
                kind, params = found
                scope["app"] = self
                scope["path_params"] = params
                try:
                    response = await self.fast[kind](Request(scope, receive, send))
                except Exception:  # a bug: the handlers answer every failure themselves
                    incident = uuid.uuid4().hex[:12]
                    logger.exception("request to %s failed (incident %s)", kind, incident)
                    response = _json({"error": f"Internal error (incident {incident})."}, 500)
                await response(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def _fast_route(path: str) -> tuple[str, dict[str, str]] | None:
    """Which prediction route ``path`` is, and its path parameters (``None``: another)."""
    if path.startswith("/predict/"):
        model = path[9:]
        return ("predict", {"model": model}) if model and "/" not in model else None
    if path.startswith("/v2/models/") and path.endswith("/infer"):
        parts = path[11:-6].split("/")
        if len(parts) == 1 and parts[0]:
            return "v2", {"model": parts[0]}
        if len(parts) == 3 and parts[0] and parts[1] == "versions" and parts[2]:
            return "v2", {"model": parts[0], "version": parts[2]}
        return None
    if path == "/invocations":
        return "invocations", {}
    return None


def _access(
    request_id: str,
    model: str,
    version: str,
    protocol: str,
    status: int,
    rows: int,
    seconds: float,
    error: str | None = None,
) -> None:
    """One JSON line per request on the ``loopml.serving.access`` logger."""
    record = {
        "time": round(time.time(), 3),
        "request_id": request_id,
        "model": model,
        "version": version,
        "protocol": protocol,
        "status": status,
        "rows": rows,
        "ms": round(seconds * 1000, 3),
    }
    if error is not None:
        record["error"] = error
    access_logger.info(orjson.dumps(record).decode())


def _enable_access_log() -> None:
    if not any(getattr(h, "_loopml", False) for h in access_logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._loopml = True  # type: ignore[attr-defined]
        access_logger.addHandler(handler)
    access_logger.setLevel(logging.INFO)
    access_logger.propagate = False


def _version_param(request: Request) -> int | Response | None:
    raw = request.path_params.get("version")
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
        return _json({"error": f"Version {raw!r} is not a positive integer."}, 400)
    return int(raw)


def _metadata(endpoint: Endpoint, deployment: Deployment) -> dict[str, Any]:
    signature = deployment.model.signature
    inputs: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    if signature is not None:
        if signature.kind == "columns":
            for spec in signature.inputs:  # type: ignore[union-attr]
                inputs.append(
                    {
                        "name": spec.name,
                        "datatype": V2_DATATYPE.get(spec.dtype, "BYTES"),
                        "shape": [-1],
                    }
                )
        else:
            spec = signature.inputs
            inputs.append(
                {
                    "name": "input",
                    "datatype": V2_DATATYPE.get(spec.dtype, "BYTES"),  # type: ignore[union-attr]
                    "shape": list(spec.shape),  # type: ignore[union-attr]
                }
            )
    versions = [d.label for d in (endpoint.primary, endpoint.canary) if d is not None]
    return {
        "name": endpoint.name,
        "versions": versions,
        "platform": f"loopml-{deployment.model.flavor}",
        "inputs": inputs,
        "outputs": outputs or [{"name": "predict", "datatype": "FP64", "shape": [-1]}],
        "parameters": {"uri": deployment.uri, "role": deployment.role},
    }


def _problem(field: str, problem: str, expected: Any = None, got: Any = None) -> dict[str, Any]:
    return {"field": field, "problem": problem, "expected": expected, "got": got}


def _feedback_items(body: Any) -> list[tuple[str, Any]]:
    raw = body.get("feedback") if isinstance(body, dict) and "feedback" in body else [body]
    if not isinstance(raw, list) or not raw:
        raise InputError([_problem("feedback", "expected a non-empty list")])
    items = []
    problems = []
    for i, item in enumerate(raw):
        where = f"feedback[{i}]" if isinstance(body, dict) and "feedback" in body else "body"
        if not isinstance(item, dict):
            problems.append(
                {"field": where, "problem": "not an object", "expected": None, "got": None}
            )
            continue
        request_id = item.get("request_id")
        if not isinstance(request_id, str) or not _REQUEST_ID.fullmatch(request_id):
            problems.append(
                _problem(
                    f"{where}.request_id",
                    "missing or malformed",
                    "the X-Request-ID of a prediction",
                    request_id,
                )
            )
            continue
        if "label" not in item:
            problems.append(
                {
                    "field": f"{where}.label",
                    "problem": "missing",
                    "expected": "a label",
                    "got": None,
                }
            )
            continue
        items.append((request_id, item["label"]))
    if problems:
        raise InputError(problems)
    return items


def _failure(
    state: ServingApp,
    exc: Exception,
    name: str,
    protocol: str,
    headers: dict[str, str],
    started: float,
) -> Response:
    status, code, message, kind, details = 500, "INTERNAL_ERROR", "", "model_error", {}
    if isinstance(exc, _Refusal):
        status, code, message, kind, details = (
            exc.status,
            exc.code,
            exc.message,
            exc.kind,
            exc.details,
        )
        headers = {**headers, **exc.headers}
    elif isinstance(exc, InputError):
        status = exc.status
        code = "PAYLOAD_TOO_LARGE" if status == 413 else "INVALID_INPUT"
        kind = "too_large" if status == 413 else "invalid_input"
        message, details = exc.message, {"problems": exc.details.get("problems", [])}
    elif isinstance(exc, Overloaded):
        status, code, kind, message = 503, "OVERLOADED", "overloaded", exc.message
        headers = {**headers, "Retry-After": str(exc.details.get("retry_after", 1))}
    elif isinstance(exc, NotFoundError):
        status, code, kind, message = 404, exc.code, "not_found", exc.message
    elif isinstance(exc, InvalidArgumentError | ValueError | TypeError):
        # the model refused values that fit the signature (a NaN for a model without NaN
        # support, a category it never saw): the client's data, so not a 500
        status, code, kind = 422, "MODEL_REFUSED_INPUT", "invalid_input"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:500]
        message = f"The model refused the input: {first}"
    elif isinstance(exc, LoopmlError):
        status, code, message = exc.http_status, exc.code, exc.message
    else:
        incident = uuid.uuid4().hex[:12]
        logger.error("model %s failed (incident %s)", name, incident, exc_info=exc)
        message = f"The model failed (incident {incident}); the server log has the details."
        details = {"incident": incident}
    took = time.perf_counter() - started
    state.metrics.error(name, kind)
    state.metrics.observe_request(name, "", protocol, status, took)
    if access_logger.isEnabledFor(logging.INFO):
        _access(headers.get("X-Request-ID", ""), name, "", protocol, status, 0, took, code)
    body = {"error": message, "error_code": code, "details": details}
    return _json(body, status, headers)
