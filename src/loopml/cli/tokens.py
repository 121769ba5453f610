"""``loopml tokens``: create, list and revoke the tracking server's bearer tokens.

With a local tracking URI (a folder, ``sqlite:///…`` or ``postgresql://…``) the commands
work on that metadata store directly: this is how the first admin token is made, on the
server's machine, before anyone can call the server (there is no default token or password).
With an ``http(s)://`` URI they call the server's ``/api/v1/tokens`` routes with the admin
token in ``LOOPML_TOKEN``.

A token's secret is printed once, by ``create``, alone on stdout (so
``TOKEN=$(loopml tokens create …)`` captures it); the store keeps only its hash, and nothing
prints it again. Exit codes follow :mod:`loopml.cli._common`: 2 for a bad name, role or
scope; 3 for no such token; 4 for a name an active token already has.
"""

from __future__ import annotations

import getpass
import os
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import typer

from loopml.cli._common import JsonFlag, get_state, message, print_json, print_table
from loopml.cli._format import cell, format_ago, format_time, reflow

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from rich.table import Table

    from loopml.entities import Token

app = typer.Typer(
    help="Create, list and revoke the tracking server's tokens (on the store directly, or "
    "through a server with an admin LOOPML_TOKEN).",
    no_args_is_help=True,
)


class RoleChoice(StrEnum):
    """The roles ``--role`` takes (:class:`loopml.entities.TokenRole`, without importing it)."""

    reader = "reader"
    writer = "writer"
    admin = "admin"


Name = Annotated[
    str,
    typer.Argument(help="The token's name.", metavar="NAME", show_default=False),
]


class _TokenAdmin(Protocol):
    def create_token(
        self,
        name: str,
        role: str,
        *,
        scopes: Mapping[str, Any] | None = None,
        actor: str | None = None,
    ) -> tuple[Token, str]: ...

    def list_tokens(self, *, include_revoked: bool = False) -> list[Token]: ...

    def revoke_token(self, name: str, *, actor: str | None = None) -> Token: ...


class _ServerTokens:
    """The token routes of a ``loopml server`` (the remote store does not manage tokens)."""

    def __init__(self, url: str, token: str | None) -> None:
        from loopml.storage.rest.base import RestBase

        self._rest = RestBase(url, token=token, retry_seconds=0)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._rest._call(method, path, **kwargs)

    def close(self) -> None:
        self._rest.close()

    def create_token(
        self,
        name: str,
        role: str,
        *,
        scopes: Mapping[str, Any] | None = None,
        actor: str | None = None,  # the server records the admin token's name
    ) -> tuple[Token, str]:
        from loopml.entities import Token
        from loopml.storage.rest.wire import from_wire

        body = {"name": name, "role": role, **(scopes or {})}
        answer = self._call("POST", "/tokens", json=body, idempotent=False)
        return from_wire(Token, answer["token"], where="token"), str(answer["secret"])

    def list_tokens(self, *, include_revoked: bool = False) -> list[Token]:
        from loopml.entities import Token
        from loopml.storage.rest.wire import from_wire

        answer = self._call("GET", "/tokens", params={"include_revoked": include_revoked})
        return from_wire(list[Token], answer["tokens"], where="tokens")

    def revoke_token(self, name: str, *, actor: str | None = None) -> Token:
        from urllib.parse import quote

        from loopml.entities import Token
        from loopml.storage.rest.wire import from_wire

        answer = self._call("DELETE", f"/tokens/{quote(name, safe='')}", idempotent=False)
        return from_wire(Token, answer["token"], where="token")


@contextmanager
def _admin(ctx: typer.Context) -> Iterator[_TokenAdmin]:
    """The store the tracking URI names, or the server's token routes for http(s)."""
    from loopml.config import Settings
    from loopml.errors import InvalidArgumentError
    from loopml.storage.protocols import TokenStore
    from loopml.storage.uris import open_store, resolve_location

    settings = Settings.from_env()
    uri = get_state(ctx).tracking_uri
    location = resolve_location(uri, settings=settings)
    if location.db_url.startswith(("http://", "https://")):
        remote = _ServerTokens(location.db_url, settings.token)
        try:
            yield remote
        finally:
            remote.close()
        return
    store = open_store(uri, settings=settings)  # shared and cached: not closed here
    if not isinstance(store, TokenStore):  # pragma: no cover - every local store is SQL
        raise InvalidArgumentError(f"The store at {store.uri} does not keep tokens.")
    yield store


def _actor() -> str:
    """Who makes the change (direct mode): ``LOOPML_ACTOR``, else the OS user."""
    actor = os.environ.get("LOOPML_ACTOR")
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def _scopes(token: Token) -> str | None:
    parts = []
    if token.scopes.experiments:
        parts.append("experiments: " + ", ".join(token.scopes.experiments))
    if token.scopes.models:
        parts.append("models: " + ", ".join(token.scopes.models))
    return "; ".join(parts) or None


def _table(tokens: Sequence[Token], *, show_revoked: bool) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text("Tokens"), title_justify="left")
    table.add_column("name", style="bold")
    table.add_column("role", no_wrap=True)
    table.add_column("limited to")
    table.add_column("created", no_wrap=True)
    table.add_column("last used", no_wrap=True)
    if show_revoked:
        table.add_column("revoked", no_wrap=True)
    for token in tokens:
        row = [
            cell(token.name),
            cell(token.role.value),
            cell(_scopes(token) or "everything", "" if _scopes(token) else "dim"),
            cell(format_time(token.creation_time)),
            cell(format_ago(token.last_used_time) if token.last_used_time else "never", "dim"),
        ]
        if show_revoked:
            row.append(cell(format_time(token.revoked_time) if token.revoked_time else None))
        table.add_row(*row)
    return table


# -- commands ------------------------------------------------------------------------------------


def _command(name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """``app.command(name)`` with the docstring reflowed into the help text."""

    def register(func: Callable[..., None]) -> Callable[..., None]:
        return app.command(name, help=reflow(func.__doc__))(func)

    return register


@_command("create")
def create_token(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Option(
            "--name",
            "-n",
            help="A name no active token has (letters, digits, '.', '_', '-').",
            metavar="NAME",
            show_default=False,
        ),
    ],
    role: Annotated[
        RoleChoice,
        typer.Option(
            "--role",
            "-r",
            help="reader (read only), writer (also log and register) or admin (also manage "
            "tokens and delete models).",
            show_default=False,
        ),
    ],
    experiments: Annotated[
        list[str] | None,
        typer.Option(
            "--experiment",
            "-e",
            help="Limit the token to this experiment (name or id); repeat for more.",
            metavar="EXPERIMENT",
        ),
    ] = None,
    models: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="Limit the token to this registered model; repeat for more.",
            metavar="MODEL",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the token and its secret as JSON.")
    ] = False,
) -> None:
    """Create a token and print its secret: the only time it is shown.

    Example:
      loopml -t ./.loopml tokens create --name ci-bot --role writer --experiment nightly
    """
    scopes = {"experiments": list(experiments or ()), "models": list(models or ())}
    with _admin(ctx) as admin:
        token, secret = admin.create_token(name, role.value, scopes=scopes, actor=_actor())
    if as_json:
        print_json({"token": token, "secret": secret})
        return
    print(secret)
    limited = _scopes(token)
    message(
        f"Created token {token.name!r} (role {token.role.value}"
        + (f"; limited to {limited}" if limited else "")
        + "). Store the secret above now: it is not shown again. Clients send it as "
        "LOOPML_TOKEN."
    )


@_command("ls")
def list_tokens(
    ctx: typer.Context,
    show_all: Annotated[bool, typer.Option("--all", "-a", help="Include revoked tokens.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """List tokens: name, role, scopes, when created and last used (never their secrets)."""
    with _admin(ctx) as admin:
        tokens = admin.list_tokens(include_revoked=show_all)
    if as_json:
        print_json(tokens)
        return
    if not tokens:
        message("No tokens yet: create one with `loopml tokens create --name NAME --role admin`.")
        return
    print_table(_table(tokens, show_revoked=show_all))


@_command("revoke")
def revoke_token(ctx: typer.Context, name: Name, as_json: JsonFlag = False) -> None:
    """Revoke a token: from now on the server refuses it. Its name can be given again."""
    with _admin(ctx) as admin:
        token = admin.revoke_token(name, actor=_actor())
    if as_json:
        print_json(token)
    else:
        message(f"Revoked token {token.name!r}.")
