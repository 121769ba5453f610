"""The data API with its blobs on S3 (moto's server on 127.0.0.1): folders, tables and
archives take the object-store paths of the blob store."""

from __future__ import annotations

import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from tests.data.conftest import make_tree, settle

from loopml import data
from loopml.testing.s3 import DUMMY_KEY, DUMMY_SECRET, S3Server, moto_s3_server

pytestmark = pytest.mark.s3


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    with moto_s3_server() as server:
        server.create_bucket("data")
        yield server


@pytest.fixture(autouse=True)
def _s3_store(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOOPML_TRACKING_URI", f"sqlite:///{tmp_path / 'meta.db'}")
    monkeypatch.setenv("LOOPML_ARTIFACTS_URI", f"s3://data/{uuid.uuid4().hex}")
    monkeypatch.setenv("LOOPML_S3_ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", DUMMY_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", DUMMY_SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def test_folder_table_and_archive_on_s3(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"a.txt": "a", "sub/b.bin": bytes(range(200))})
    settle()
    first = data.add("files", src)
    assert first.stats.files_stored == 3  # two files and the manifest
    again = data.add("files", src)
    assert (again.stats.files_hashed, again.stats.created) == (0, False)
    out = data.get("files@v1").materialize(tmp_path / "out")
    assert (out / "sub" / "b.bin").read_bytes() == bytes(range(200))

    frame = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    table = data.add("table", frame)
    pd.testing.assert_frame_equal(data.get("table").to_pandas(), frame)
    assert table.profile is not None

    with zipfile.ZipFile(tmp_path / "a.zip", "w") as archive:
        archive.writestr("z/one.txt", "1")
    unpacked = data.add("zipped", tmp_path / "a.zip", unpack=True)
    assert (unpacked.path() / "z" / "one.txt").read_text() == "1"
