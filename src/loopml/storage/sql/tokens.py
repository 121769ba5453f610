"""Bearer tokens of the tracking server in the SQL store.

A token's secret is ``lml_`` followed by 32 random bytes (``secrets.token_urlsafe``), shown
once when it is created. The store keeps only its SHA-256 hash: the secret has 256 bits of
entropy, so unlike a password it cannot be guessed from a fast hash, and an unsalted hash can
be looked up by an index (one query per request; a salted, slow KDF such as scrypt would need
the token's row found some other way first and would cost tens of milliseconds per request,
for no gain against a random secret). The hash found is compared with
:func:`hmac.compare_digest` all the same.

A name is unique among tokens that are not revoked (a partial unique index, so two
concurrent creations cannot both win); a revoked token stays listed, with its revocation
time, and its name can be given to a new token. Creation and revocation are written with
their events (``token.created``, ``token.revoked``) in one transaction.

Scopes limit a token to experiments (kept by name: experiment names are unique and never
change; an id given at creation is turned into its experiment's name, a name that matches
an existing experiment wins over an id) and registered models (by name). None given means no
limit for that kind of resource.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import re
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, Row, select, update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from loopml.entities import Token, TokenRole, TokenScopes
from loopml.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    NotFoundError,
    StoreUnavailableError,
)
from loopml.storage.sql.base import SqlBase, now_ms
from loopml.storage.sql.schema import experiments, tokens
from loopml.storage.validation import validate_experiment_name, validate_model_name

__all__ = ["SECRET_PREFIX", "TokensMixin", "hash_token_secret"]

#: what every secret starts with, so a leaked one is recognisable (secret scanners, logs)
SECRET_PREFIX = "lml_"  # noqa: S105 (a prefix, not a password)
#: ``last_used_time`` is written at most this often per token (milliseconds)
LAST_USED_RESOLUTION_MS = 60_000
_SECRET_BYTES = 32
_MAX_SECRET_LENGTH = 256
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SUBJECT = "token"
_log = logging.getLogger(__name__)
_SCOPE_KINDS = ("experiments", "models")


def hash_token_secret(secret: str) -> str:
    """The hex SHA-256 of a token's secret: what the store keeps instead of the secret."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _validate_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        shown = repr(name) if len(repr(name)) <= 80 else repr(name)[:77] + "..."
        raise InvalidArgumentError(
            "The token name must be 1 to 128 characters: letters, digits, '.', '_' and '-', "
            f"starting with a letter or digit. Got {shown} instead.",
            field="name",
        )
    return name


def _validate_role(role: Any) -> TokenRole:
    try:
        return TokenRole(role.lower() if isinstance(role, str) else role)
    except ValueError:
        choices = ", ".join(repr(r.value) for r in TokenRole)
        raise InvalidArgumentError(
            f"The token role must be one of {choices}. Got {role!r} instead.", field="role"
        ) from None


def _names(kind: str, values: Any) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise InvalidArgumentError(
            f"The token's {kind} scope must be a list of names. Got {values!r} instead.",
            field=f"scopes.{kind}",
        )
    return list(values)


def _scope_lists(scopes: TokenScopes | Mapping[str, Any] | None) -> tuple[list[str], list[str]]:
    """The experiments and models a ``scopes`` argument lists (not yet resolved)."""
    if scopes is None:
        return [], []
    if isinstance(scopes, TokenScopes):
        return list(scopes.experiments), list(scopes.models)
    if not isinstance(scopes, Mapping):
        raise InvalidArgumentError(
            "The token scopes must be a mapping with 'experiments' and 'models' lists. "
            f"Got {type(scopes).__name__}.",
            field="scopes",
        )
    unknown = sorted(set(scopes) - set(_SCOPE_KINDS))
    if unknown:
        raise InvalidArgumentError(
            f"Tokens can be limited to 'experiments' and 'models' only. Got {unknown}.",
            field="scopes",
        )
    return _names("experiments", scopes.get("experiments")), _names("models", scopes.get("models"))


def _clean_actor(actor: Any) -> str | None:
    if actor is None:
        return None
    if not isinstance(actor, str):
        raise InvalidArgumentError(
            f"The actor must be a string. Got {type(actor).__name__}.", field="actor"
        )
    return actor[:256]


def _to_token(row: Row) -> Token:
    scopes = json.loads(row.scopes or "{}")
    return Token(
        name=row.name,
        role=TokenRole(row.role),
        creation_time=row.creation_time,
        scopes=TokenScopes(
            experiments=tuple(scopes.get("experiments", ())),
            models=tuple(scopes.get("models", ())),
        ),
        last_used_time=row.last_used_time,
        revoked_time=row.revoked_time,
    )


class TokensMixin(SqlBase):
    def create_token(
        self,
        name: str,
        role: TokenRole | str,
        *,
        scopes: TokenScopes | Mapping[str, Any] | None = None,
        actor: str | None = None,
    ) -> tuple[Token, str]:
        """A new token and its secret. The secret is returned only here: the store keeps
        its hash. Raises AlreadyExistsError when a token that is not revoked has this name."""
        name = _validate_name(name)
        clean_role = _validate_role(role)
        experiment_refs, model_refs = _scope_lists(scopes)
        models = sorted({validate_model_name(m) for m in model_refs})
        actor = _clean_actor(actor)
        secret = SECRET_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)

        def write(conn: Connection) -> Token:
            names = sorted({self._token_scope_experiment(conn, ref) for ref in experiment_refs})
            scope_json = json.dumps(
                {k: v for k, v in (("experiments", names), ("models", models)) if v},
                sort_keys=True,
            )
            conn.execute(
                tokens.insert().values(
                    name=name,
                    role=clean_role.value,
                    secret_hash=hash_token_secret(secret),
                    scopes=scope_json,
                    creation_time=now_ms(),
                )
            )
            payload = {"role": clean_role.value, "experiments": names, "models": models}
            self._event(conn, "token.created", _SUBJECT, name, payload, actor)
            return _to_token(self._active_token_row(conn, name))

        try:
            token = self._db.write(write)
        except SqlIntegrityError:
            raise AlreadyExistsError(
                f"A token named {name!r} already exists; revoke it first or pick another name.",
                name=name,
            ) from None
        return token, secret

    def _token_scope_experiment(self, conn: Connection, ref: Any) -> str:
        """The experiment name a scope entry stands for: an existing experiment's name, else
        an existing experiment's id, else (an experiment yet to be created) the name itself."""
        if isinstance(ref, int) and not isinstance(ref, bool):
            ref = str(ref)
        ref = validate_experiment_name(ref)
        by_name = conn.execute(select(experiments.c.name).where(experiments.c.name == ref)).scalar()
        if by_name is not None:
            return str(by_name)
        if ref.isascii() and ref.isdigit() and len(ref) <= 18:
            by_id = conn.execute(
                select(experiments.c.name).where(experiments.c.experiment_id == int(ref))
            ).scalar()
            if by_id is not None:
                return str(by_id)
        return ref

    def _active_token_row(self, conn: Connection, name: str) -> Row:
        row = conn.execute(
            select(tokens).where(tokens.c.name == name, tokens.c.revoked_time.is_(None))
        ).first()
        if row is None:
            raise NotFoundError(f"No active token named {name!r}.", name=name)
        return row

    def list_tokens(self, *, include_revoked: bool = False) -> list[Token]:
        """Tokens by name (then creation time); revoked ones only if asked."""
        query = select(tokens).order_by(tokens.c.name, tokens.c.creation_time, tokens.c.token_id)
        if not include_revoked:
            query = query.where(tokens.c.revoked_time.is_(None))
        with self._db.read() as conn:
            return [_to_token(row) for row in conn.execute(query).all()]

    def revoke_token(self, name: str, *, actor: str | None = None) -> Token:
        """Revoke the active token named ``name``: from now on it authenticates nothing."""
        name = _validate_name(name)
        actor = _clean_actor(actor)

        def write(conn: Connection) -> Token:
            row = self._active_token_row(conn, name)
            conn.execute(
                update(tokens)
                .where(tokens.c.token_id == row.token_id)
                .values(revoked_time=now_ms())
            )
            self._event(conn, "token.revoked", _SUBJECT, name, {"role": row.role}, actor)
            revoked = conn.execute(select(tokens).where(tokens.c.token_id == row.token_id))
            return _to_token(revoked.one())

        return self._db.write(write)

    def verify_token(self, secret: Any) -> Token | None:
        """The active token whose secret this is, else ``None`` (unknown, revoked, or not a
        loopml token at all). Records when the token was last used (at most once a minute)."""
        if (
            not isinstance(secret, str)
            or not secret.startswith(SECRET_PREFIX)
            or len(secret) > _MAX_SECRET_LENGTH
        ):
            return None
        digest = hash_token_secret(secret)
        with self._db.read() as conn:
            row = conn.execute(select(tokens).where(tokens.c.secret_hash == digest)).first()
        if (
            row is None
            or not hmac.compare_digest(row.secret_hash.encode(), digest.encode())
            or row.revoked_time is not None
        ):
            return None
        now = now_ms()
        if row.last_used_time is None or now - row.last_used_time >= LAST_USED_RESOLUTION_MS:
            self._touch_token(row.token_id, now)
            return dataclasses.replace(_to_token(row), last_used_time=now)
        return _to_token(row)

    def _touch_token(self, token_id: int, now: int) -> None:
        """Record a use; a database too busy to take it does not fail the request."""
        stale = now - LAST_USED_RESOLUTION_MS

        def write(conn: Connection) -> None:
            conn.execute(
                update(tokens)
                .where(
                    tokens.c.token_id == token_id,
                    (tokens.c.last_used_time.is_(None)) | (tokens.c.last_used_time <= stale),
                )
                .values(last_used_time=now)
            )

        try:
            self._db.write(write)
        except StoreUnavailableError as exc:
            _log.warning("could not record the use of a token: %s", exc.message)
