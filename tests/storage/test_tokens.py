"""Bearer tokens in the SQL store (SQLite and PostgreSQL): hashed secrets, unique active
names, scopes, revocation, last-used times and events."""

from __future__ import annotations

import hashlib
import json
import threading

import pytest
from sqlalchemy import select

import loopml.storage.sql.tokens as token_module
from loopml.entities import Token, TokenRole, TokenScopes
from loopml.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    NotFoundError,
    StoreUnavailableError,
)
from loopml.storage.protocols import TokenStore
from loopml.storage.rest import RestStore
from loopml.storage.sql import SqlStore
from loopml.storage.sql.schema import events, tokens


def _rows(store: SqlStore) -> list[dict[str, object]]:
    with store._db.read() as conn:
        return [dict(row._mapping) for row in conn.execute(select(tokens)).all()]


def _events(store: SqlStore) -> list[tuple[str, str, str | None, dict[str, object]]]:
    with store._db.read() as conn:
        rows = conn.execute(
            select(events.c.kind, events.c.subject_id, events.c.actor, events.c.payload)
            .where(events.c.subject_type == "token")
            .order_by(events.c.event_id)
        ).all()
    return [(kind, subject, actor, json.loads(payload)) for kind, subject, actor, payload in rows]


def test_only_the_sql_store_keeps_tokens(sql_store: SqlStore) -> None:
    assert isinstance(sql_store, TokenStore)
    remote = RestStore("http://127.0.0.1:1", retry_seconds=0)
    try:
        assert not isinstance(remote, TokenStore)
    finally:
        remote.close()


def test_a_new_store_has_no_token(sql_store: SqlStore) -> None:
    assert sql_store.list_tokens(include_revoked=True) == []


def test_create_returns_the_secret_once_and_keeps_only_its_hash(sql_store: SqlStore) -> None:
    token, secret = sql_store.create_token("ci-bot", "writer")
    assert token == Token(
        name="ci-bot",
        role=TokenRole.WRITER,
        creation_time=token.creation_time,
        scopes=TokenScopes(),
    )
    assert token.active
    assert secret.startswith("lml_")
    assert len(secret) >= 4 + 43  # 32 random bytes, base64url
    [row] = _rows(sql_store)
    assert row["secret_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    stored = json.dumps(row, default=str)
    assert secret not in stored
    assert secret[4:] not in stored
    assert "secret" not in repr(sql_store.list_tokens())


def test_secrets_are_random(sql_store: SqlStore) -> None:
    secrets = {sql_store.create_token(f"t{i}", "reader")[1] for i in range(5)}
    assert len(secrets) == 5


def test_verify(sql_store: SqlStore) -> None:
    _, secret = sql_store.create_token("reader", TokenRole.READER)
    found = sql_store.verify_token(secret)
    assert found is not None
    assert (found.name, found.role) == ("reader", TokenRole.READER)
    for wrong in (secret + "x", secret[:-1], "lml_" + "A" * 43, "", "Bearer " + secret, None, 42):
        assert sql_store.verify_token(wrong) is None  # type: ignore[arg-type]
    assert sql_store.verify_token("lml_" + "x" * 10_000) is None


def test_revoked_tokens_authenticate_nothing(sql_store: SqlStore) -> None:
    _, secret = sql_store.create_token("old", "admin")
    revoked = sql_store.revoke_token("old")
    assert revoked.revoked_time is not None
    assert not revoked.active
    assert sql_store.verify_token(secret) is None
    assert sql_store.list_tokens() == []
    assert [t.name for t in sql_store.list_tokens(include_revoked=True)] == ["old"]
    with pytest.raises(NotFoundError, match="No active token named 'old'"):
        sql_store.revoke_token("old")
    with pytest.raises(NotFoundError):
        sql_store.revoke_token("never-made")


def test_names_are_unique_among_active_tokens(sql_store: SqlStore) -> None:
    _, first = sql_store.create_token("ci-bot", "writer")
    with pytest.raises(AlreadyExistsError, match="ci-bot"):
        sql_store.create_token("ci-bot", "reader")
    sql_store.revoke_token("ci-bot")
    _, second = sql_store.create_token("ci-bot", "reader")  # a revoked name can be reused
    assert sql_store.verify_token(first) is None
    again = sql_store.verify_token(second)
    assert again is not None
    assert again.role == TokenRole.READER
    listed = sql_store.list_tokens(include_revoked=True)
    assert [(t.name, t.active) for t in listed] == [("ci-bot", False), ("ci-bot", True)]


def test_concurrent_creations_of_one_name_make_one_token(sql_store: SqlStore) -> None:
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def create() -> None:
        barrier.wait()
        try:
            sql_store.create_token("race", "writer")
            outcomes.append("created")
        except AlreadyExistsError:
            outcomes.append("exists")

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["created", "exists", "exists", "exists"]
    assert len(sql_store.list_tokens()) == 1


@pytest.mark.parametrize(
    ("name", "role", "scopes", "field"),
    [
        ("", "reader", None, "name"),
        ("has space", "reader", None, "name"),
        ("../x", "reader", None, "name"),
        ("x" * 129, "reader", None, "name"),
        (None, "reader", None, "name"),
        ("ok", "root", None, "role"),
        ("ok", "", None, "role"),
        ("ok", "reader", {"datasets": ["a"]}, "scopes"),
        ("ok", "reader", {"models": "churn"}, "scopes.models"),
        ("ok", "reader", {"models": ["no/slash"]}, "name"),
        ("ok", "reader", {"experiments": [""]}, "name"),
        ("ok", "reader", ["churn"], "scopes"),
    ],
)
def test_invalid_tokens_are_refused(
    sql_store: SqlStore, name: object, role: str, scopes: object, field: str
) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        sql_store.create_token(name, role, scopes=scopes)  # type: ignore[arg-type]
    assert caught.value.details["field"] == field
    assert _rows(sql_store) == []
    assert _events(sql_store) == []


def test_role_is_case_insensitive(sql_store: SqlStore) -> None:
    token, _ = sql_store.create_token("loud", "ADMIN")
    assert token.role == TokenRole.ADMIN


def test_scopes_name_experiments_and_models(sql_store: SqlStore) -> None:
    demo = sql_store.create_experiment("demo")
    sql_store.create_experiment("7")  # a name that looks like an id: the name wins
    seven = sql_store.get_experiment_by_name("7")
    assert seven is not None
    token, secret = sql_store.create_token(
        "scoped",
        "writer",
        scopes={
            "experiments": [demo.experiment_id, "7", "future", "demo"],
            "models": ["fraud", "churn", "churn"],
        },
    )
    assert token.scopes == TokenScopes(
        experiments=("7", "demo", "future"), models=("churn", "fraud")
    )
    assert not token.scopes.unlimited
    verified = sql_store.verify_token(secret)
    assert verified is not None
    assert verified.scopes == token.scopes
    by_dataclass, _ = sql_store.create_token("dc", "reader", scopes=TokenScopes(models=("m",)))
    assert by_dataclass.scopes == TokenScopes(models=("m",))


def test_last_used_is_written_at_most_once_a_minute(
    sql_store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1_000_000]
    monkeypatch.setattr(token_module, "now_ms", lambda: clock[0])
    _, secret = sql_store.create_token("busy", "reader")
    assert sql_store.list_tokens()[0].last_used_time is None

    first = sql_store.verify_token(secret)
    assert first is not None
    assert first.last_used_time == 1_000_000
    clock[0] += 59_000
    assert sql_store.verify_token(secret) is not None
    assert sql_store.list_tokens()[0].last_used_time == 1_000_000
    clock[0] += 1_000
    later = sql_store.verify_token(secret)
    assert later is not None
    assert later.last_used_time == 1_060_000
    assert sql_store.list_tokens()[0].last_used_time == 1_060_000


def test_creation_and_revocation_are_events(sql_store: SqlStore) -> None:
    sql_store.create_token("ci-bot", "writer", scopes={"models": ["churn"]}, actor="alice")
    sql_store.revoke_token("ci-bot", actor="bob")
    assert _events(sql_store) == [
        (
            "token.created",
            "ci-bot",
            "alice",
            {"role": "writer", "experiments": [], "models": ["churn"]},
        ),
        ("token.revoked", "ci-bot", "bob", {"role": "writer"}),
    ]
    assert all("lml_" not in json.dumps(event) for event in _events(sql_store))


def test_a_busy_database_does_not_fail_verification(
    sql_store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, secret = sql_store.create_token("busy", "reader")

    def locked(_fn: object) -> None:
        raise StoreUnavailableError("database is locked")

    monkeypatch.setattr(sql_store._db, "write", locked)
    token = sql_store.verify_token(secret)
    assert token is not None
    assert token.name == "busy"


def test_actors_are_checked(sql_store: SqlStore) -> None:
    with pytest.raises(InvalidArgumentError, match="actor"):
        sql_store.create_token("x", "reader", actor=42)  # type: ignore[arg-type]
    sql_store.create_token("long", "reader", actor="a" * 1000)
    assert _events(sql_store)[0][2] == "a" * 256
