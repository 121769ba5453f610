"""The store conformance suite again, through a live server: the remote store must behave
exactly like the SQL store it fronts (RELIABILITY: same errors, same results)."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopml.errors import IntegrityError
from loopml.storage.rest import RestStore
from loopml.storage.sql import SqlStore
from loopml.testing.store_suite import TrackingStoreSuite


class TestRestStore(TrackingStoreSuite):
    @pytest.fixture
    def store(self, rest_store: RestStore) -> RestStore:
        return rest_store

    def test_corrupted_blob_is_refused(
        self, store: RestStore, server_store: SqlStore, tmp_path: Path
    ) -> None:
        """The suite's test, corrupting the object in the server's blob store (the remote
        store's blobs are the server's, reached over HTTP only)."""
        run_id = store.create_run(store.create_experiment("corrupted").experiment_id).run_id
        src = tmp_path / "data.csv"
        src.write_text("a,b\n1,2\n")
        info = store.put_artifact(run_id, "data.csv", src)
        assert info.digest is not None
        blobs = server_store.blobs
        with blobs._fs.open(blobs._object_path(info.digest), "wb") as fh:
            fh.write(b"a,b\n1,3\n")
        dest = tmp_path / "out.csv"
        with pytest.raises(IntegrityError, match="blake3"):
            store.get_artifact(run_id, "data.csv", dest)
        assert not dest.exists()
