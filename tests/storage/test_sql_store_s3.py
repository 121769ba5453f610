"""The conformance suite again, with the blobs on S3 (moto's server on 127.0.0.1)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopml.storage.blobs import BlobStore
from loopml.storage.sql import SqlStore
from loopml.testing.s3 import S3Server, moto_s3_server
from loopml.testing.store_suite import TrackingStoreSuite

pytestmark = pytest.mark.s3


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    with moto_s3_server() as server:
        server.create_bucket("suite")
        yield server


class TestSqlStoreWithS3Blobs(TrackingStoreSuite):
    @pytest.fixture
    def store(self, s3_server: S3Server, tmp_path: Path) -> Iterator[SqlStore]:
        blobs = BlobStore(
            f"s3://suite/{uuid.uuid4().hex}", storage_options=s3_server.storage_options
        )
        store = SqlStore(f"sqlite:///{tmp_path / 'meta.db'}", blobs)
        yield store
        store.close()
