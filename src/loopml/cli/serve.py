"""``loopml serve``: serve registered models over HTTP (V2 inference protocol, plain JSON,
MLflow scoring), with adaptive batching, hot swaps, canary/shadow and a prediction log."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from loopml.cli._common import get_state

__all__ = ["serve", "system_arrow_allocator"]

ARROW_POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"


def system_arrow_allocator() -> None:
    """Have Arrow allocate with the system allocator in the server's processes, unless
    ``ARROW_DEFAULT_MEMORY_POOL`` already names one. Arrow's default (mimalloc) keeps what
    each thread freed for later, and the prediction log's writer thread builds a Parquet
    segment every second or so under load: about 40 MB more resident memory
    (docs/benchmarks.md). pyarrow reads the variable when it is imported, so this runs
    before the server's code imports it; worker processes inherit it."""
    import os

    os.environ.setdefault(ARROW_POOL_ENV, "system")


def serve(
    ctx: typer.Context,
    model_uri: Annotated[
        str | None,
        typer.Argument(
            help="The model: models:/NAME@ALIAS (followed: an alias move is a hot swap), "
            "models:/NAME/VERSION, runs:/RUN_ID/PATH or a folder. Omit it with --config.",
            show_default=False,
        ),
    ] = None,
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="A serving YAML file: several models, per-model batching, canary and shadow.",
            show_default=False,
        ),
    ] = None,
    host: Annotated[
        str, typer.Option("--host", help="Address to bind. 0.0.0.0 exposes it to the network.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535)] = 8080,
    workers: Annotated[int, typer.Option("--workers", "-w", min=1, help="Worker processes.")] = 1,
    name: Annotated[
        str | None,
        typer.Option("--name", help="The endpoint name [default: the registered model's name]"),
    ] = None,
    max_batch_size: Annotated[
        int | None, typer.Option(help="Rows merged into one predict call [default: 64]")
    ] = None,
    max_latency_ms: Annotated[
        float | None,
        typer.Option(help="Wait this long for a fuller batch when the model is idle [default: 0]"),
    ] = None,
    max_queue_rows: Annotated[
        int | None,
        typer.Option(help="Rows allowed to wait; past this, 503 at once [default: 4096]"),
    ] = None,
    method: Annotated[
        str | None, typer.Option(help="predict or predict_proba [default: predict]")
    ] = None,
    trusted: Annotated[
        bool, typer.Option("--trusted", help="Allow model formats that run code (pickle).")
    ] = False,
    prediction_log: Annotated[
        bool,
        typer.Option(
            "--prediction-log/--no-prediction-log",
            help="Log every request's inputs and outputs to the blob store (Parquet).",
        ),
    ] = True,
    metrics: Annotated[
        bool, typer.Option("--metrics/--no-metrics", help="Serve Prometheus /metrics.")
    ] = True,
    auth: Annotated[
        bool, typer.Option("--auth", help="Require a bearer token of the tracking store.")
    ] = False,
    access_log: Annotated[
        bool, typer.Option("--access-log", help="One JSON line per request on stderr.")
    ] = False,
) -> None:
    """Serve models over HTTP until Ctrl-C or SIGTERM (queued requests finish and the
    prediction log is written first).

    Endpoints: POST /v2/models/NAME/infer (KServe V2), POST /predict/NAME (records, columns
    or a 2-D array), POST /invocations (MLflow), POST /feedback/NAME, GET /v2/health/ready,
    GET /metrics.

    Examples:
      loopml serve models:/churn@champion --port 8080 --workers 2
      loopml serve --config serving.yaml
    """
    import os

    system_arrow_allocator()  # before anything imports pyarrow

    import uvicorn

    from loopml.errors import InvalidArgumentError
    from loopml.serving.config import load_config, single_model_config
    from loopml.serving.factory import SERVE_ENV, encode_options

    if (model_uri is None) == (config_file is None):
        raise InvalidArgumentError(
            "Give either a MODEL_URI or --config FILE (one of them).", field="model_uri"
        )
    switches = {
        "prediction_log": {"enabled": prediction_log},
        "metrics": metrics,
        "auth": auth,
        "access_log": access_log,
    }
    if config_file is not None:
        config = load_config(config_file)
        if not prediction_log or not metrics or auth or access_log:
            config = config.model_copy(
                update={
                    "prediction_log": config.prediction_log.model_copy(
                        update={"enabled": config.prediction_log.enabled and prediction_log}
                    ),
                    "metrics": config.metrics and metrics,
                    "auth": config.auth or auth,
                    "access_log": config.access_log or access_log,
                }
            )
    else:
        assert model_uri is not None
        config = single_model_config(
            model_uri,
            name=name,
            max_batch_size=max_batch_size,
            max_latency_ms=max_latency_ms,
            max_queue_rows=max_queue_rows,
            method=method,
            trusted=trusted or None,
            **switches,
        )
    tracking_uri = get_state(ctx).tracking_uri or os.environ.get("LOOPML_TRACKING_URI")
    os.environ[SERVE_ENV] = encode_options(config, tracking_uri=tracking_uri)
    uvicorn.run(
        "loopml.serving.factory:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        timeout_graceful_shutdown=30,
        log_level="warning",
        access_log=False,
        ws="none",  # no WebSocket routes: nor their protocol's imports at start
    )
