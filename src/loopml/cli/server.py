"""``loopml server``: serve a store over HTTP (the REST API under /api/v1)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

__all__ = ["server"]


def _warn_without_admin(backend_store: str | None, artifacts: str | None) -> None:
    """With --auth and no active admin token nobody can manage tokens through the server:
    say how to make the first one (on this machine, against the store directly)."""
    from rich.console import Console

    from loopml.storage.uris import open_store

    store: Any = open_store(backend_store, artifacts)  # a SQL store: it holds the tokens
    try:
        admins = [t for t in store.list_tokens() if t.role.value == "admin"]
    finally:
        store.close()
    if not admins:
        target = f"LOOPML_TRACKING_URI={backend_store} " if backend_store else ""
        Console(stderr=True).print(
            "[yellow]warning:[/] --auth is on but the store has no admin token, so nobody can "
            "create tokens through the server. Make the first one on this machine:\n"
            f"  {target}loopml tokens create --name admin --role admin",
            highlight=False,
            soft_wrap=True,
        )


#: bind addresses that mean "every interface" (not a host name a client sends)
_ANY = frozenset({"0.0.0.0", "::"})  # noqa: S104


def server(
    host: Annotated[
        str, typer.Option("--host", help="Address to bind. 0.0.0.0 exposes it to the network.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", help="Port to listen on.")] = 5000,
    backend_store: Annotated[
        str | None,
        typer.Option(
            "--backend-store",
            help="The metadata store: a folder, sqlite:///FILE or postgresql://... "
            "[default: $LOOPML_TRACKING_URI, else ./.loopml]",
            show_default=False,
        ),
    ] = None,
    artifacts: Annotated[
        str | None,
        typer.Option(
            "--artifacts",
            help="Where blobs live: a folder or s3://bucket/prefix [default: beside the store]",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", "-w", min=1, help="Worker processes.")] = 1,
    auth: Annotated[
        bool, typer.Option("--auth", help="Require an API token (loopml tokens create).")
    ] = False,
    allowed_hosts: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            help="Also accept this Host header (repeatable); needed behind a proxy or a DNS name.",
        ),
    ] = None,
    cors_origins: Annotated[
        list[str] | None,
        typer.Option("--cors-origin", help="Allow cross-origin requests from this origin."),
    ] = None,
    max_upload_mb: Annotated[
        int, typer.Option("--max-upload-mb", min=1, help="Largest upload accepted, in MB.")
    ] = 5 * 1024,
) -> None:
    """Serve the store over HTTP for a team: point clients at it with
    LOOPML_TRACKING_URI=http://HOST:PORT; their code does not change.

    Binds 127.0.0.1 unless told otherwise. In-flight requests finish on Ctrl-C / SIGTERM.

    Example:
      loopml server --port 5000 --backend-store postgresql://postgres@127.0.0.1/test --workers 2
    """
    import os

    import uvicorn

    from loopml.server.factory import APP_ENV, encode_options

    if auth:
        _warn_without_admin(backend_store, artifacts)

    os.environ[APP_ENV] = encode_options(
        backend_store=backend_store,
        artifacts=artifacts,
        auth=auth,
        allowed_hosts=[*(allowed_hosts or []), *([] if host in _ANY else [host])],
        cors_origins=list(cors_origins or []),
        max_upload_bytes=max_upload_mb * 1024 * 1024,
    )
    uvicorn.run(
        "loopml.server.factory:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        timeout_graceful_shutdown=30,
        log_level="info",
    )
