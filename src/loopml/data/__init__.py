"""Dataset versions, schemas, validation rules and column profiles.

``loopml.data.add`` versions a folder, a file or a table; ``get`` reads a version back;
``validate`` checks a table against rules; ``describe`` infers a schema and a mergeable
profile (the reference that monitoring compares production windows against).
"""

from typing import TYPE_CHECKING

from loopml import _lazy
from loopml.data._add import AddStats
from loopml.data._manifest import FileEntry
from loopml.data.datasets import (
    DatasetDiff,
    DatasetVersion,
    add,
    diff,
    get,
    list_datasets,
    list_versions,
    resolve,
    set_rules,
    validate,
)

if TYPE_CHECKING:
    from loopml.data.profile import (
        ColumnDelta,
        Profile,
        Schema,
        SchemaDiff,
        describe,
        profile_table,
        sketch,
    )
    from loopml.data.rules import Rules
    from loopml.data.validation import RuleFailure, ValidationReport

#: names that need numpy and pyarrow, imported on first use
_LAZY = {
    "ColumnDelta": "loopml.data.profile",
    "Profile": "loopml.data.profile",
    "Schema": "loopml.data.profile",
    "SchemaDiff": "loopml.data.profile",
    "describe": "loopml.data.profile",
    "profile_table": "loopml.data.profile",
    "sketch": "loopml.data.profile",
    "Rules": "loopml.data.rules",
    "RuleFailure": "loopml.data.validation",
    "ValidationReport": "loopml.data.validation",
}

__all__ = [
    "AddStats",
    "ColumnDelta",
    "DatasetDiff",
    "DatasetVersion",
    "FileEntry",
    "Profile",
    "RuleFailure",
    "Rules",
    "Schema",
    "SchemaDiff",
    "ValidationReport",
    "add",
    "describe",
    "diff",
    "get",
    "list_datasets",
    "list_versions",
    "profile_table",
    "resolve",
    "set_rules",
    "sketch",
    "validate",
]


__getattr__, __dir__ = _lazy.lazy_names(__name__, _LAZY, globals(), __all__)
