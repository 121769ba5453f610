"""The model registry: registered models, versions, aliases, lineage and promotion events.

``register`` turns a logged model package into an immutable, numbered version; aliases
(``champion``, ``challenger``...) move atomically and every move is recorded with who, when
and why; ``lineage`` says which run, dataset versions and code produced a version.
"""

from loopml.registry._api import (
    Lineage,
    archive_version,
    default_actor,
    delete_alias,
    delete_model,
    delete_version,
    get_model,
    get_version,
    history,
    lineage,
    list_models,
    list_versions,
    register,
    restore_version,
    set_alias,
)

__all__ = [
    "Lineage",
    "archive_version",
    "default_actor",
    "delete_alias",
    "delete_model",
    "delete_version",
    "get_model",
    "get_version",
    "history",
    "lineage",
    "list_models",
    "list_versions",
    "register",
    "restore_version",
    "set_alias",
]
