"""The direct store: SQL metadata plus a blob store, in this process."""

from __future__ import annotations

from loopml.storage.blobs import BlobStore
from loopml.storage.sql.artifacts import ArtifactsMixin
from loopml.storage.sql.datasets import DatasetsMixin
from loopml.storage.sql.engine import SqlEngine, make_engine
from loopml.storage.sql.experiments import ExperimentsMixin
from loopml.storage.sql.metrics import MetricsMixin
from loopml.storage.sql.migrate import upgrade
from loopml.storage.sql.monitors import MonitorsMixin
from loopml.storage.sql.predictions import PredictionsMixin
from loopml.storage.sql.registry import RegistryMixin
from loopml.storage.sql.search import SearchMixin
from loopml.storage.sql.statistics import Statistics
from loopml.storage.sql.tokens import TokensMixin

__all__ = ["SqlStore"]


class SqlStore(
    ExperimentsMixin,
    MetricsMixin,
    ArtifactsMixin,
    SearchMixin,
    DatasetsMixin,
    RegistryMixin,
    PredictionsMixin,
    MonitorsMixin,
    TokensMixin,
):
    """Implements every store protocol over SQLAlchemy and a :class:`BlobStore`.

    Opening a store brings its schema to the newest migration first (once, under a lock),
    then, on SQLite, refreshes the planner's statistics if they are missing or stale.
    """

    def __init__(self, db_url: str, blobs: BlobStore | str, *, busy_timeout: float = 30.0) -> None:
        engine = make_engine(db_url, busy_timeout=busy_timeout)
        migrated = upgrade(engine)
        self._db = SqlEngine(engine)
        self._statistics = Statistics(engine)
        self._statistics.refresh(force=migrated)  # SQLite: ANALYZE if new indexes or stale
        self._statements = {}
        self._blobs = blobs if isinstance(blobs, BlobStore) else BlobStore(blobs)
        self._uri = db_url

    @property
    def uri(self) -> str:
        return self._uri

    @property
    def blobs(self) -> BlobStore:
        return self._blobs

    def close(self) -> None:
        self._db.dispose()

    def dispose_after_fork(self) -> None:
        """Forget pooled connections inherited from a parent process (see os.fork)."""
        self._db.engine.dispose(close=False)

    def __repr__(self) -> str:
        url = self._db.engine.url.render_as_string(hide_password=True)
        return f"SqlStore({url!r}, blobs={self._blobs.uri!r})"
