"""The remote store: the model registry (see :mod:`loopml.server.routes.registry`).

Names, aliases and versions that go into a URL path are checked here first with the store's
own validators, so a bad one raises the same :class:`~loopml.errors.InvalidArgumentError`
(same ``field``) as the SQL store instead of reaching a wrong route; they are percent-encoded
anyway. Everything else (digests, run ids, tags, statuses) is validated by the server's store
and its error comes back as the same class, with its details.

The ``actor`` of a change is sent along; a server with auth on ignores it and records the
token's name instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from loopml.entities import ModelVersion, ModelVersionStatus, RegisteredModel, RegistryEvent
from loopml.storage.rest.base import RestBase
from loopml.storage.rest.wire import from_wire
from loopml.storage.validation import (
    validate_alias,
    validate_dataset_name,
    validate_dataset_version,
    validate_key,
    validate_model_name,
    validate_model_version,
    validate_string_map,
)

__all__ = ["RestRegistryMixin"]


def _model(name: str) -> str:
    return "/models/" + quote(validate_model_name(name), safe="")


def _version(name: str, version: int) -> str:
    return f"{_model(name)}/versions/{validate_model_version(version)}"


def _alias(name: str, alias: str) -> str:
    return f"{_model(name)}/aliases/" + quote(validate_alias(alias), safe="")


def _previous(body: Any) -> int | None:
    return from_wire(int | None, body["previous"], where="previous")  # type: ignore[arg-type]


def _change(actor: str | None, reason: str, **more: Any) -> dict[str, Any]:
    """The query of a DELETE that records an event (no None values: httpx would send '')."""
    params: dict[str, Any] = {"reason": reason or "", **more}
    if actor is not None:
        params["actor"] = actor
    return params


class RestRegistryMixin(RestBase):
    """Implements :class:`~loopml.storage.protocols.RegistryStore` over HTTP."""

    # ---------------------------------------------------------------- registered models

    def create_registered_model(
        self, name: str, description: str = "", tags: Mapping[str, Any] | None = None
    ) -> RegisteredModel:
        body = {
            "name": validate_model_name(name),
            "description": description or "",
            "tags": _tags(tags),
        }
        return from_wire(RegisteredModel, self._call("POST", "/models", json=body))

    def get_registered_model(self, name: str) -> RegisteredModel:
        return from_wire(RegisteredModel, self._call("GET", _model(name)))

    def list_registered_models(self) -> list[RegisteredModel]:
        return from_wire(list[RegisteredModel], self._call("GET", "/models"))

    def update_registered_model(self, name: str, *, description: str) -> RegisteredModel:
        body = {"description": description or ""}
        return from_wire(RegisteredModel, self._call("PATCH", _model(name), json=body))

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        self._call("PUT", f"{_model(name)}/tags", json=_tag(key, value))

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self._call("DELETE", f"{_model(name)}/tags", params={"key": validate_key("tag", key)})

    def delete_registered_model(
        self, name: str, *, actor: str | None = None, reason: str = ""
    ) -> None:
        self._call("DELETE", _model(name), params=_change(actor, reason), idempotent=False)

    # ---------------------------------------------------------------- versions

    def create_model_version(
        self,
        name: str,
        *,
        package_digest: str,
        run_id: str | None = None,
        source: str = "",
        description: str = "",
        flavor: str = "",
        tags: Mapping[str, Any] | None = None,
        actor: str | None = None,
    ) -> ModelVersion:
        path = f"{_model(name)}/versions"
        body = {
            "package_digest": package_digest,
            "run_id": run_id,
            "source": source or "",
            "description": description or "",
            "flavor": flavor or "",
            "tags": _tags(tags),
            "actor": actor,
        }
        answer = self._call("POST", path, json=body)
        return from_wire(ModelVersion, answer)

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        return from_wire(ModelVersion, self._call("GET", _version(name, version)))

    def list_model_versions(self, name: str) -> list[ModelVersion]:
        return from_wire(list[ModelVersion], self._call("GET", f"{_model(name)}/versions"))

    def update_model_version(self, name: str, version: int, *, description: str) -> ModelVersion:
        body = {"description": description or ""}
        return from_wire(ModelVersion, self._call("PATCH", _version(name, version), json=body))

    def set_model_version_tag(self, name: str, version: int, key: str, value: Any) -> None:
        self._call("PUT", f"{_version(name, version)}/tags", json=_tag(key, value))

    def delete_model_version_tag(self, name: str, version: int, key: str) -> None:
        self._call(
            "DELETE", f"{_version(name, version)}/tags", params={"key": validate_key("tag", key)}
        )

    def set_model_version_status(
        self,
        name: str,
        version: int,
        status: ModelVersionStatus | str,
        *,
        force: bool = False,
        actor: str | None = None,
        reason: str = "",
    ) -> ModelVersion:
        path = f"{_version(name, version)}/status"
        body = {
            "status": status.value if isinstance(status, ModelVersionStatus) else status,
            "force": force,
            "actor": actor,
            "reason": reason or "",
        }
        answer = self._call("POST", path, json=body)
        return from_wire(ModelVersion, answer)

    def delete_model_version(
        self,
        name: str,
        version: int,
        *,
        force: bool = False,
        actor: str | None = None,
        reason: str = "",
    ) -> None:
        params = _change(actor, reason, force="true" if force else "false")
        self._call("DELETE", _version(name, version), params=params, idempotent=False)

    # ---------------------------------------------------------------- aliases

    def set_alias(
        self, name: str, alias: str, version: int, *, actor: str | None = None, reason: str = ""
    ) -> int | None:
        path = _alias(name, alias)
        body = {"version": validate_model_version(version), "actor": actor, "reason": reason or ""}
        # not retried: a repeated move would record a second event
        return _previous(self._call("PUT", path, json=body, idempotent=False))

    def delete_alias(
        self, name: str, alias: str, *, actor: str | None = None, reason: str = ""
    ) -> int:
        answer = self._call(
            "DELETE", _alias(name, alias), params=_change(actor, reason), idempotent=False
        )
        return from_wire(int, answer["previous"], where="previous")

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return from_wire(ModelVersion, self._call("GET", _alias(name, alias)))

    # ---------------------------------------------------------------- history and lineage

    def list_registry_events(self, name: str) -> list[RegistryEvent]:
        return from_wire(list[RegistryEvent], self._call("GET", f"{_model(name)}/events"))

    def list_dataset_models(self, name: str, version: int | None = None) -> list[ModelVersion]:
        path = "/datasets/" + quote(validate_dataset_name(name), safe="") + "/models"
        params = {} if version is None else {"version": validate_dataset_version(version)}
        return from_wire(list[ModelVersion], self._call("GET", path, params=params))


def _tags(tags: Mapping[str, Any] | None) -> dict[str, str] | None:
    """Tags checked and turned into strings exactly as the store does (same errors)."""
    return None if tags is None else validate_string_map("tag", tags)


def _tag(key: str, value: Any) -> dict[str, str]:
    ((clean_key, clean_value),) = validate_string_map("tag", {key: value}).items()
    return {"key": clean_key, "value": clean_value}
