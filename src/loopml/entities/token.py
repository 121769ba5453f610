"""API tokens of the tracking server: who may call it, with which role, limited to what."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Token", "TokenRole", "TokenScopes"]


class TokenRole(StrEnum):
    """What a token may do; each role includes the ones before it.

    ``reader`` reads everything; ``writer`` also creates and changes experiments, runs,
    artifacts, datasets and model versions; ``admin`` also manages tokens and deletes models.
    """

    READER = "reader"
    WRITER = "writer"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class TokenScopes:
    """The experiments (by name) and registered models a token is limited to.

    An empty tuple means no limit on that kind of resource: a token scoped to the models
    ``churn`` and ``fraud`` and to no experiment may use every experiment.
    """

    experiments: tuple[str, ...] = ()
    models: tuple[str, ...] = ()

    @property
    def unlimited(self) -> bool:
        return not self.experiments and not self.models


@dataclass(frozen=True, slots=True)
class Token:
    """A bearer token, as the store describes it: never its secret nor the secret's hash.

    Times are milliseconds since the epoch; ``last_used_time`` is refreshed at most once a
    minute; a revoked token has a ``revoked_time`` and authenticates nothing.
    """

    name: str
    role: TokenRole
    creation_time: int
    scopes: TokenScopes = TokenScopes()
    last_used_time: int | None = None
    revoked_time: int | None = None

    @property
    def active(self) -> bool:
        return self.revoked_time is None
