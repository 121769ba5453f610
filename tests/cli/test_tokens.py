"""``loopml tokens``: create (the secret printed once), ls and revoke, on the store directly
(the first admin's bootstrap) and through a server with an admin token."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from loopml.cli import app
from loopml.server.app import ServerConfig
from loopml.storage.protocols import TokenStore
from loopml.storage.sql import SqlStore
from loopml.storage.uris import open_store
from loopml.testing.server import live_server

from .conftest import Invoke


def _store(uri: str) -> SqlStore:
    store = open_store(uri)
    assert isinstance(store, SqlStore)
    assert isinstance(store, TokenStore)
    return store


@pytest.mark.parametrize("command", [[], ["create"], ["ls"], ["revoke"]])
def test_help(runner: CliRunner, command: list[str]) -> None:
    result = runner.invoke(app, ["tokens", *command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.stdout


def test_no_token_exists_until_one_is_created(cli_json: Callable[..., Any]) -> None:
    assert cli_json("tokens", "ls", "--json") == []


def test_create_prints_the_secret_once(cli: Invoke, store_uri: str) -> None:
    result = cli("tokens", "create", "--name", "ci-bot", "--role", "writer")
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip()
    assert secret.startswith("lml_")
    assert result.stdout == secret + "\n"  # alone on stdout: TOKEN=$(loopml tokens create ...)
    assert "not shown again" in result.stderr
    assert secret not in result.stderr
    token = _store(store_uri).verify_token(secret)
    assert token is not None
    assert (token.name, token.role.value) == ("ci-bot", "writer")

    listed = cli("tokens", "ls")
    assert listed.exit_code == 0, listed.output
    assert "ci-bot" in listed.stdout
    assert "writer" in listed.stdout
    assert secret not in listed.output
    assert secret not in cli("tokens", "ls", "--json", "--all").output


def test_create_json_and_scopes(cli_json: Callable[..., Any], store_uri: str) -> None:
    experiment_id = _store(store_uri).create_experiment("nightly").experiment_id
    made = cli_json(
        "tokens",
        "create",
        "-n",
        "scoped",
        "-r",
        "reader",
        "--experiment",
        experiment_id,
        "-e",
        "future",
        "--model",
        "churn",
        "--json",
    )
    assert set(made) == {"token", "secret"}
    assert made["secret"].startswith("lml_")
    assert made["token"]["name"] == "scoped"
    assert made["token"]["role"] == "reader"
    assert made["token"]["scopes"] == {"experiments": ["future", "nightly"], "models": ["churn"]}
    [listed] = cli_json("tokens", "ls", "--json")
    assert listed == made["token"]
    assert "secret" not in json.dumps(listed)


def test_revoke(cli: Invoke, cli_json: Callable[..., Any], store_uri: str) -> None:
    secret = cli("tokens", "create", "--name", "old", "--role", "admin").stdout.strip()
    revoked = cli("tokens", "revoke", "old")
    assert revoked.exit_code == 0, revoked.output
    assert "Revoked token 'old'" in revoked.stderr
    assert _store(store_uri).verify_token(secret) is None
    assert cli_json("tokens", "ls", "--json") == []
    [everything] = cli_json("tokens", "ls", "--json", "--all")
    assert everything["revoked_time"] is not None
    table = cli("tokens", "ls", "--all")
    assert "revoked" in table.stdout
    again = cli("tokens", "revoke", "old")
    assert again.exit_code == 3
    assert "No active token named 'old'" in again.stderr


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["--name", "x", "--role", "root"], 2, "--role"),
        (["--name", "bad name", "--role", "reader"], 2, "token name"),
        (["--name", "x", "--role", "reader", "--model", "a/b"], 2, "model name"),
        (["--role", "reader"], 2, "--name"),
    ],
)
def test_bad_input(cli: Invoke, args: list[str], code: int, says: str) -> None:
    result = cli("tokens", "create", *args)
    assert result.exit_code == code, result.output
    assert says in result.output
    assert "lml_" not in result.stdout


def test_a_name_in_use_is_a_conflict(cli: Invoke) -> None:
    assert cli("tokens", "create", "--name", "dup", "--role", "reader").exit_code == 0
    result = cli("tokens", "create", "--name", "dup", "--role", "admin")
    assert result.exit_code == 4
    assert "already exists" in result.stderr


def test_actor_is_recorded(cli: Invoke, store_uri: str, runner: CliRunner) -> None:
    result = runner.invoke(
        app,
        ["-t", store_uri, "tokens", "create", "--name", "bot", "--role", "reader"],
        env={"LOOPML_ACTOR": "ops-alice"},
    )
    assert result.exit_code == 0, result.output
    from sqlalchemy import select

    from loopml.storage.sql.schema import events

    with _store(store_uri)._db.read() as conn:
        actor = conn.execute(
            select(events.c.actor).where(events.c.kind == "token.created")
        ).scalar()
    assert actor == "ops-alice"


# -- through a server --------------------------------------------------------------------------


@pytest.fixture
def server(cli: Invoke, store_uri: str) -> Iterator[tuple[str, str]]:
    """A server with auth on, and the admin token bootstrapped on its store directly."""
    admin = cli("tokens", "create", "--name", "root", "--role", "admin").stdout.strip()
    with live_server(_store(store_uri), ServerConfig(auth=True)) as url:
        yield url, admin


def test_through_a_server(runner: CliRunner, store_uri: str, server: tuple[str, str]) -> None:
    url, admin = server

    def remote(*args: str, token: str | None = admin) -> Any:
        env = {"LOOPML_TOKEN": token} if token else {}
        return runner.invoke(app, ["-t", url, "tokens", *args], env=env)

    made = remote("create", "--name", "ci-bot", "--role", "writer", "-m", "churn", "--json")
    assert made.exit_code == 0, made.output
    secret = json.loads(made.stdout)["secret"]
    assert _store(store_uri).verify_token(secret) is not None

    listed = remote("ls", "--json")
    assert listed.exit_code == 0, listed.output
    assert [t["name"] for t in json.loads(listed.stdout)] == ["ci-bot", "root"]
    assert secret not in listed.stdout
    assert admin not in listed.stdout

    assert remote("revoke", "ci-bot").exit_code == 0
    assert _store(store_uri).verify_token(secret) is None
    missing = remote("revoke", "ci-bot")
    assert missing.exit_code == 3

    anonymous = remote("ls", token=None)
    assert anonymous.exit_code == 1
    assert "requires a token" in anonymous.stderr
    writer = _store(store_uri).create_token("writer", "writer")[1]
    refused = remote("create", "--name", "sneaky", "--role", "admin", token=writer)
    assert refused.exit_code == 1
    assert "needs 'admin'" in refused.stderr
    revoked = remote("ls", token=secret)
    assert revoked.exit_code == 1
    assert "unknown or was revoked" in revoked.stderr
