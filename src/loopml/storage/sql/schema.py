"""SQLAlchemy Core tables of the metadata store.

The schema in a database is created and upgraded only by the Alembic migrations in
``migrations/``; this module mirrors it for queries, and a test checks the two agree.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
)

__all__ = [
    "artifacts",
    "dataset_inputs",
    "dataset_versions",
    "datasets",
    "events",
    "experiment_tags",
    "experiments",
    "latest_metrics",
    "metadata",
    "metrics",
    "model_aliases",
    "model_version_tags",
    "model_versions",
    "monitor_results",
    "monitors",
    "params",
    "prediction_segments",
    "registered_model_tags",
    "registered_models",
    "run_tags",
    "runs",
    "tokens",
]

metadata = MetaData()

#: a 64-bit integer primary key that SQLite still treats as its rowid
_IdType = BigInteger().with_variant(Integer(), "sqlite")

experiments = Table(
    "experiments",
    metadata,
    Column("experiment_id", _IdType, primary_key=True, autoincrement=True),
    Column("name", String(500), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("lifecycle_stage", String(16), nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_update_time", BigInteger, nullable=False),
)

experiment_tags = Table(
    "experiment_tags",
    metadata,
    Column(
        "experiment_id",
        _IdType,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", String(500), primary_key=True),
    Column("value", Text, nullable=False),
    sqlite_with_rowid=False,
)

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column(
        "experiment_id",
        _IdType,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("run_name", String(500), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger),
    Column("parent_run_id", String(32)),
    Column("user_name", String(256)),
    Column("host", String(256)),
    Column("entry_point", Text),
    Column("git_commit", String(64)),
    Column("git_dirty", Boolean),
    Column("python_version", String(32)),
    Column("packages", Text),
    Column("error", Text),
    Column("heartbeat_time", BigInteger),
    Index("ix_runs_experiment_start", "experiment_id", "start_time"),
    Index("ix_runs_parent", "parent_run_id"),
    Index("ix_runs_status_heartbeat", "status", "heartbeat_time"),
)


def _only_on(dialect: str, index: Index) -> Index:
    """An index that exists on one backend only; ``info["dialect"]`` names it (Alembic's
    comparison does not look at ``ddl_if``, so the schema test does)."""
    index.info["dialect"] = dialect
    return index.ddl_if(dialect=dialect)


def _value_indexes(table: str) -> list[Index]:
    """Filtering by a param or tag value: a btree on (key, value) on SQLite; on PostgreSQL,
    whose btree entries must fit in ~2.7 KB while a value may hold 8,000 characters, a hash
    index on the value, which takes any length (see migration 0006)."""
    return [
        _only_on("sqlite", Index(f"ix_{table}_key_value", "key", "value")),
        _only_on("postgresql", Index(f"ix_{table}_value_hash", "value", postgresql_using="hash")),
    ]


params = Table(
    "params",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(500), primary_key=True),
    Column("value", Text, nullable=False),
    *_value_indexes("params"),
    sqlite_with_rowid=False,
)

run_tags = Table(
    "run_tags",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(500), primary_key=True),
    Column("value", Text, nullable=False),
    *_value_indexes("run_tags"),
    sqlite_with_rowid=False,
)

#: full metric history; a NaN is stored as value 0 with is_nan true (SQLite has no NaN)
metrics = Table(
    "metrics",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(500), primary_key=True),
    Column("step", BigInteger, primary_key=True),
    Column("timestamp", BigInteger, primary_key=True),
    Column("value", Float(precision=53), primary_key=True),
    Column("is_nan", Boolean, primary_key=True),
    sqlite_with_rowid=False,
)

#: the latest point of each metric of each run (largest step, then latest timestamp)
latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(500), primary_key=True),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("value", Float(precision=53), nullable=False),
    Column("is_nan", Boolean, nullable=False),
    Index("ix_latest_metrics_key_value", "key", "value"),
    sqlite_with_rowid=False,
)

#: a run's logical artifact paths mapped to content-addressed blobs
artifacts = Table(
    "artifacts",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("path", String(1000), primary_key=True),
    Column("digest", String(80), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_time", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

#: append-only log of what happened (run created, status changes, experiments archived, ...)
events = Table(
    "events",
    metadata,
    Column("event_id", _IdType, primary_key=True, autoincrement=True),
    Column("time", BigInteger, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("subject_type", String(32), nullable=False),
    #: the subject's id or name (a monitor's: up to 128 characters; a model's: 256)
    Column("subject_id", String(256), nullable=False),
    Column("actor", String(256)),
    Column("payload", Text, nullable=False, default="{}"),
    #: one subject's events by time (a monitor's alerts since a time, a model's history)
    Index("ix_events_subject_time", "subject_type", "subject_id", "time"),
)

#: named series of dataset versions; ``rules`` is the JSON of the rules new versions must pass
datasets = Table(
    "datasets",
    metadata,
    Column("dataset_id", _IdType, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("rules", Text),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_update_time", BigInteger, nullable=False),
)

#: immutable dataset versions; ``digest`` names the manifest blob (path -> digest, size)
dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column(
        "dataset_id",
        _IdType,
        ForeignKey("datasets.dataset_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("version", Integer, primary_key=True),
    Column("digest", String(80), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("num_files", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("num_rows", BigInteger),
    Column("schema", Text),
    Column("profile", Text),
    Column("source", Text, nullable=False, default=""),
    Column("description", Text, nullable=False, default=""),
    Column("creation_time", BigInteger, nullable=False),
    Index("ix_dataset_versions_digest", "digest"),
    sqlite_with_rowid=False,
)

#: lineage: the dataset versions each run used
dataset_inputs = Table(
    "dataset_inputs",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("dataset_id", _IdType, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("context", String(64), primary_key=True),
    Column("time", BigInteger, nullable=False),
    ForeignKeyConstraint(
        ["dataset_id", "version"],
        ["dataset_versions.dataset_id", "dataset_versions.version"],
        ondelete="CASCADE",
    ),
    Index("ix_dataset_inputs_version", "dataset_id", "version"),
    sqlite_with_rowid=False,
)

#: the model registry: named models ...
registered_models = Table(
    "registered_models",
    metadata,
    Column("model_id", _IdType, primary_key=True, autoincrement=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    #: the highest version number ever given, so a deleted version's number is never reused
    Column("last_version", Integer, nullable=False, default=0),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_update_time", BigInteger, nullable=False),
)

registered_model_tags = Table(
    "registered_model_tags",
    metadata,
    Column(
        "model_id",
        _IdType,
        ForeignKey("registered_models.model_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", String(500), primary_key=True),
    Column("value", Text, nullable=False),
    sqlite_with_rowid=False,
)

#: ... their immutable versions (a model package digest plus lineage) ...
model_versions = Table(
    "model_versions",
    metadata,
    Column(
        "model_id",
        _IdType,
        ForeignKey("registered_models.model_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("version", Integer, primary_key=True),
    Column("package_digest", String(80), nullable=False),
    Column("run_id", String(32)),
    Column("source", Text, nullable=False, default=""),
    Column("status", String(16), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("flavor", String(64), nullable=False, default=""),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_update_time", BigInteger, nullable=False),
    Index("ix_model_versions_run", "run_id"),
    sqlite_with_rowid=False,
)

model_version_tags = Table(
    "model_version_tags",
    metadata,
    Column("model_id", _IdType, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("key", String(500), primary_key=True),
    Column("value", Text, nullable=False),
    ForeignKeyConstraint(
        ["model_id", "version"],
        ["model_versions.model_id", "model_versions.version"],
        ondelete="CASCADE",
    ),
    sqlite_with_rowid=False,
)

#: ... and aliases, each pointing at one version of its model
model_aliases = Table(
    "model_aliases",
    metadata,
    Column("model_id", _IdType, primary_key=True),
    Column("alias", String(256), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("update_time", BigInteger, nullable=False),
    ForeignKeyConstraint(
        ["model_id", "version"],
        ["model_versions.model_id", "model_versions.version"],
        ondelete="CASCADE",
    ),
    sqlite_with_rowid=False,
)

#: bearer tokens of the tracking server: only a SHA-256 hash of each secret is kept; ``scopes``
#: is the JSON of the experiment and model names a token is limited to (``{}``: no limit); a
#: name is unique among tokens that are not revoked (a partial unique index)
tokens = Table(
    "tokens",
    metadata,
    Column("token_id", _IdType, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column("role", String(16), nullable=False),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("scopes", Text, nullable=False, default="{}"),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_used_time", BigInteger),
    Column("revoked_time", BigInteger),
)

Index(
    "ux_tokens_active_name",
    tokens.c.name,
    unique=True,
    sqlite_where=tokens.c.revoked_time.is_(None),
    postgresql_where=tokens.c.revoked_time.is_(None),
)

#: the serving layer's prediction log: Parquet segments (blobs) of one model's predictions or
#: feedback, each with the time range (ms, inclusive) and count of its rows; a blob is
#: recorded once per model and kind (a retried record finds the first)
prediction_segments = Table(
    "prediction_segments",
    metadata,
    Column("segment_id", _IdType, primary_key=True, autoincrement=True),
    Column("model_name", String(256), nullable=False),
    Column("model_version", Integer),
    Column("kind", String(16), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=False),
    Column("row_count", BigInteger, nullable=False),
    Column("digest", String(80), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_time", BigInteger, nullable=False),
    Index("ix_prediction_segments_model_kind_start", "model_name", "kind", "start_time"),
    Index("ix_prediction_segments_model_kind_end", "model_name", "kind", "end_time"),
    Index("ux_prediction_segments_digest", "model_name", "kind", "digest", unique=True),
)

#: monitors of served models: a unique name and the JSON of the spec the monitoring layer
#: defines; their events are in ``events`` (subject_type "monitor", subject_id the name)
monitors = Table(
    "monitors",
    metadata,
    Column("monitor_id", _IdType, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("spec", Text, nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_update_time", BigInteger, nullable=False),
)

#: the result of each window [window_start, window_end) (ms) a monitor checked, on time or
#: ``late`` (rows that arrived after their window was checked); checking a window again
#: replaces its row; deleted with the monitor
monitor_results = Table(
    "monitor_results",
    metadata,
    Column(
        "monitor_id",
        _IdType,
        ForeignKey("monitors.monitor_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("window_start", BigInteger, primary_key=True),
    Column("window_end", BigInteger, primary_key=True),
    Column("late", Boolean, primary_key=True, server_default=false()),
    Column("status", String(32), nullable=False),
    Column("summary", Text, nullable=False),
    Column("created_time", BigInteger, nullable=False),
    Index("ix_monitor_results_end", "monitor_id", "window_end"),
    sqlite_with_rowid=False,
)
