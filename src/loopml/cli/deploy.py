"""``loopml deploy``: write what it takes to run ``loopml serve`` for one model elsewhere: a
Docker build context (``docker``) or Kubernetes manifests (``k8s``).

Both commands wrap :mod:`loopml.serving.deploy` and print what it wrote and the commands to
run next; warnings (an unpinned requirement, a secret-looking variable...) go to stderr.
The library is imported inside the commands, so ``loopml --help`` stays fast.

Exit codes follow :mod:`loopml.cli._common`: 2 for bad input (the message starts with the
option at fault: ``--env: ...``), 3 when the model, version or alias does not exist.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopml.cli._common import JsonFlag, get_state, message, print_json, print_table
from loopml.cli._format import key_value_table as _key_value_table
from loopml.cli._format import reflow as _reflow

if TYPE_CHECKING:
    from collections.abc import Callable

    from loopml.errors import InvalidArgumentError
    from loopml.serving.deploy import DeployResult

__all__ = ["app"]

app = typer.Typer(
    help="Write deployment artifacts for a model: a Docker build context or Kubernetes "
    "manifests that run `loopml serve`.",
    no_args_is_help=True,
)

#: the option (or argument) each library field comes from, to name it in errors
_OPTIONS = {
    "uri": "MODEL_URI",
    "model_uri": "MODEL_URI",
    "out_dir": "--output",
    "bake": "--no-bake",
    "port": "--port",
    "workers": "--workers",
    "base_image": "--base-image",
    "env": "--env",
    "name": "--name",
    "image": "--image",
    "namespace": "--namespace",
    "replicas": "--replicas",
    "min_replicas": "--min-replicas",
    "max_replicas": "--max-replicas",
    "target_cpu": "--target-cpu",
    "cpu_request": "--cpu-request",
    "cpu_limit": "--cpu-limit",
    "memory_request": "--memory-request",
    "memory_limit": "--memory-limit",
    "token_secret": "--token-secret",
    "token_secret_key": "--token-secret-key",
    "labels": "--label",
}

ModelUriArg = Annotated[
    str,
    typer.Argument(
        help="The model: models:/NAME@ALIAS, models:/NAME/VERSION, models:/NAME/latest, "
        "runs:/RUN_ID/PATH, or a folder written by loopml.models.save.",
        metavar="MODEL_URI",
        show_default=False,
    ),
]
Port = Annotated[int, typer.Option("--port", help="The port the server listens on (>= 1024).")]
Workers = Annotated[int, typer.Option("--workers", help="Server worker processes (1-64).")]
Env = Annotated[
    list[str] | None,
    typer.Option(
        "--env",
        "-e",
        help="KEY=VALUE: an environment variable for the server (repeatable).",
        metavar="KEY=VALUE",
        show_default=False,
    ),
]
NameOpt = Annotated[
    str | None,
    typer.Option(
        "--name",
        help="The name of the image or objects (lowercase letters, digits, '-'). "
        "(default: from the model's name)",
        show_default=False,
    ),
]
Force = Annotated[
    bool,
    typer.Option("--force", help="Write into a non-empty folder, replacing loopml's files."),
]


def _command(name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """``app.command(name)`` with the docstring reflowed into the help text."""

    def register(func: Callable[..., None]) -> Callable[..., None]:
        return app.command(name, help=_reflow(func.__doc__))(func)

    return register


def _pairs(values: list[str] | None, field: str) -> dict[str, str]:
    """``KEY=VALUE`` strings as a dict (split at the first ``=``; a key given twice is an
    error, so a typo never silently replaces a value)."""
    from loopml.errors import InvalidArgumentError

    found: dict[str, str] = {}
    for text in values or []:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise InvalidArgumentError(f"expected KEY=VALUE. Got {text[:80]!r}.", field=field)
        if key in found:
            raise InvalidArgumentError(
                f"{key[:80]!r} is given twice; give each key once.", field=field
            )
        found[key] = value
    return found


def _optional(value: str | None) -> str | None:
    """A resource option: ``none`` (or empty) leaves it out."""
    if value is None or value.strip().lower() in ("", "none"):
        return None
    return value


def _for_cli(exc: InvalidArgumentError) -> InvalidArgumentError:
    """The library's error, starting with the option at fault."""
    from loopml.errors import InvalidArgumentError

    option = _OPTIONS.get(str(exc.details.get("field")))
    if option is None:
        return exc
    return InvalidArgumentError(f"{option}: {exc.message}", **exc.details)


def _run(call: Callable[[], DeployResult]) -> DeployResult:
    from loopml.errors import InvalidArgumentError

    try:
        return call()
    except InvalidArgumentError as exc:
        raise _for_cli(exc) from None


def _show(result: DeployResult, headline: str, rows: list[tuple[str, Any]]) -> None:
    from rich.text import Text

    rows = [
        *rows,
        ("files", "\n".join(result.files)),
        ("next", "\n".join(result.next_steps)),
    ]
    print_table(_key_value_table(Text(headline, style="bold green"), rows))
    _warn(result)


def _warn(result: DeployResult) -> None:
    for warning in result.warnings:
        message(f"Warning: {warning}", style="yellow")


@_command("docker")
def docker(
    ctx: typer.Context,
    model_uri: ModelUriArg,
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="The folder to write (new or empty)."),
    ] = Path("build"),
    bake: Annotated[
        bool,
        typer.Option(
            "--bake/--no-bake",
            help="Copy the model package into the image (checked against its digests), so "
            "the container never needs the store. --no-bake: the container loads MODEL_URI "
            "from LOOPML_TRACKING_URI when it starts.",
        ),
    ] = True,
    port: Port = 8080,
    workers: Workers = 1,
    base_image: Annotated[
        str | None,
        typer.Option(
            "--base-image",
            help="The FROM image. (default: python:X.Y-slim-bookworm for this Python)",
            show_default=False,
        ),
    ] = None,
    env: Env = None,
    name: NameOpt = None,
    force: Force = False,
    as_json: JsonFlag = False,
) -> None:
    """Write a Docker build context that serves a model with `loopml serve`.

    The folder holds a Dockerfile (a slim Python image, a non-root user, a HEALTHCHECK on
    /v2/health/live), a requirements.txt that pins loopml (this version) and the model's
    requirements from its manifest, a .dockerignore, a README.txt saying how to build and
    run it and, by default, the model package itself, fetched from the store and checked
    against its digests. Nothing is built: run the printed `docker build` command.

    Examples:
      loopml deploy docker models:/churn@champion -o build/
      loopml deploy docker models:/churn/3 -o build/ --workers 4 --env LOG_LEVEL=info
      loopml deploy docker models:/churn@champion -o build/ --no-bake
    """
    from loopml.serving import deploy

    tracking_uri = get_state(ctx).tracking_uri
    result = _run(
        lambda: deploy.write_docker_context(
            model_uri,
            output,
            bake=bake,
            port=port,
            workers=workers,
            base_image=base_image,
            env=_pairs(env, "env"),
            name=name,
            force=force,
            tracking_uri=tracking_uri,
        )
    )
    if as_json:
        print_json(result.to_dict())
        _warn(result)
        return
    version = None if result.model_version is None else f"version {result.model_version}"
    rows: list[tuple[str, Any]] = [
        ("model", result.model_uri),
        ("version", version),
        ("package", result.package_digest),
        ("baked", "yes: the image holds the model" if result.baked else "no: loaded at start"),
        ("base image", result.image),
        ("requirements", "\n".join(result.requirements)),
    ]
    _show(result, f"Wrote a Docker build context to {result.out_dir}", rows)


@_command("k8s")
def k8s(
    model_uri: ModelUriArg,
    image: Annotated[
        str,
        typer.Option(
            "--image",
            help="The image to run (built from `loopml deploy docker`), with its tag.",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="The folder to write (new or empty)."),
    ] = Path("k8s"),
    name: NameOpt = None,
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace",
            "-n",
            help="The namespace of every object. (default: kubectl's current one)",
            show_default=False,
        ),
    ] = None,
    replicas: Annotated[
        int | None,
        typer.Option(
            "--replicas",
            help="Pods: the autoscaler's minimum, or the fixed count with --no-hpa. (default: 2)",
            show_default=False,
        ),
    ] = None,
    min_replicas: Annotated[
        int | None,
        typer.Option(
            "--min-replicas",
            help="The autoscaler's minimum. (default: --replicas)",
            show_default=False,
        ),
    ] = None,
    max_replicas: Annotated[
        int | None,
        typer.Option(
            "--max-replicas",
            help="The autoscaler's maximum. (default: 10, or the minimum if larger)",
            show_default=False,
        ),
    ] = None,
    target_cpu: Annotated[
        int,
        typer.Option("--target-cpu", help="The autoscaler's CPU target, % of the request."),
    ] = 70,
    hpa: Annotated[
        bool,
        typer.Option("--hpa/--no-hpa", help="Write a HorizontalPodAutoscaler (autoscaling/v2)."),
    ] = True,
    service_monitor: Annotated[
        bool,
        typer.Option(
            "--service-monitor/--no-service-monitor",
            help="Write a Prometheus-operator ServiceMonitor for /metrics.",
        ),
    ] = True,
    port: Port = 8080,
    workers: Workers = 1,
    cpu_request: Annotated[
        str, typer.Option("--cpu-request", help="CPU request ('none' to leave it out).")
    ] = "500m",
    cpu_limit: Annotated[
        str, typer.Option("--cpu-limit", help="CPU limit ('none': no limit).")
    ] = "none",
    memory_request: Annotated[
        str, typer.Option("--memory-request", help="Memory request ('none' to leave it out).")
    ] = "512Mi",
    memory_limit: Annotated[
        str, typer.Option("--memory-limit", help="Memory limit ('none': no limit).")
    ] = "1Gi",
    env: Env = None,
    token_secret: Annotated[
        str | None,
        typer.Option(
            "--token-secret",
            help="A Secret whose key (--token-secret-key) becomes LOOPML_TOKEN.",
            show_default=False,
        ),
    ] = None,
    token_secret_key: Annotated[
        str, typer.Option("--token-secret-key", help="The key in the --token-secret Secret.")
    ] = "token",  # noqa: S107 - a key name, not a secret
    label: Annotated[
        list[str] | None,
        typer.Option(
            "--label",
            "-l",
            help="KEY=VALUE: an extra label on every object (repeatable), e.g. the 'release' "
            "label your Prometheus selects ServiceMonitors by.",
            metavar="KEY=VALUE",
            show_default=False,
        ),
    ] = None,
    force: Force = False,
    as_json: JsonFlag = False,
) -> None:
    """Write Kubernetes manifests that serve a model: one YAML file per object.

    deployment.yaml (readiness probe on /v2/health/ready, liveness on /v2/health/live, a
    non-root read-only container), service.yaml, hpa.yaml (autoscaling/v2 on CPU) and
    servicemonitor.yaml (Prometheus operator, /metrics), all with the same name and labels.
    The image is the one built from `loopml deploy docker`. The store is not read: the model
    URI only names the objects. Apply them with `kubectl apply -f DIR`.

    Examples:
      loopml deploy k8s models:/churn@champion -o k8s/ --image registry.example.com/churn:v3
      loopml deploy k8s models:/churn@champion -o k8s/ --image churn:v3 --replicas 3 \\
          --max-replicas 12 --namespace ml --token-secret loopml-token
    """
    from loopml.serving import deploy

    result = _run(
        lambda: deploy.write_k8s_manifests(
            model_uri,
            output,
            image=image,
            name=name,
            namespace=namespace,
            replicas=replicas,
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            target_cpu=target_cpu,
            autoscale=hpa,
            service_monitor=service_monitor,
            port=port,
            workers=workers,
            cpu_request=_optional(cpu_request),
            cpu_limit=_optional(cpu_limit),
            memory_request=_optional(memory_request),
            memory_limit=_optional(memory_limit),
            env=_pairs(env, "env"),
            token_secret=token_secret,
            token_secret_key=token_secret_key,
            labels=_pairs(label, "labels"),
            force=force,
        )
    )
    if as_json:
        print_json(result.to_dict())
        _warn(result)
        return
    rows: list[tuple[str, Any]] = [
        ("model", result.model_uri),
        ("name", result.name),
        ("namespace", namespace),
        ("image", result.image),
    ]
    _show(result, f"Wrote Kubernetes manifests to {result.out_dir}", rows)
