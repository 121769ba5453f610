"""Dataset versions, schemas, validation rules and column profiles.

``loopml.data.add`` versions a folder, a file or a table; ``get`` reads a version back;
``validate`` checks a table against rules; ``describe`` infers a schema and a mergeable
profile (the reference that monitoring compares production windows against).
"""

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
