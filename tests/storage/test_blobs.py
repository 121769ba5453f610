"""Tests for the content-addressed blob store, on a local folder and on S3 (moto server)."""

from __future__ import annotations

import io
import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3
import fsspec
import pytest

from loopml.errors import (
    ArtifactNotFoundError,
    IntegrityError,
    InvalidArgumentError,
    MissingDependencyError,
    NotFoundError,
    StoreUnavailableError,
)
from loopml.storage import blobs
from loopml.storage.blobs import CHUNK_SIZE, BlobRef, BlobStore
from loopml.testing.s3 import S3Server, moto_s3_server

MALFORMED_DIGESTS = [
    "",
    "blake3:",
    "sha256:" + "0" * 64,
    "blake3:" + "0" * 63,
    "blake3:" + "0" * 65,
    "blake3:" + "A" * 64,
    "blake3:" + "0" * 64 + "\n",
    "BLAKE3:" + "0" * 64,
    "blake3:../../../../etc/passwd",
    "blake3:" + "0" * 62 + "/x",
    None,
    123,
]


def digest_of(data: bytes) -> str:
    return "blake3:" + blake3.blake3(data).hexdigest()


@dataclass
class Backend:
    """A blob store under test plus a separate, uncached view of its raw objects."""

    store: BlobStore
    raw: fsspec.AbstractFileSystem
    root: str

    def object_path(self, digest: str) -> str:
        hex_digest = digest.removeprefix("blake3:")
        return f"{self.root}/blake3/{hex_digest[:2]}/{hex_digest}"

    def objects(self) -> list[str]:
        return sorted(self.raw.find(f"{self.root}/blake3"))

    def temp_files(self) -> list[str]:
        return sorted(self.raw.find(f"{self.root}/tmp"))


@pytest.fixture(scope="module")
def s3_bucket() -> Iterator[tuple[S3Server, str]]:
    with moto_s3_server() as server:
        bucket = f"loopml-test-{uuid.uuid4().hex[:12]}"
        server.create_bucket(bucket)
        yield server, bucket


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        root = tmp_path / "blobs"
        return Backend(BlobStore(str(root)), fsspec.filesystem("file"), root.as_posix())
    server, bucket = request.getfixturevalue("s3_bucket")
    root = f"{bucket}/{uuid.uuid4().hex}"
    options = server.storage_options
    store = BlobStore(f"s3://{root}", storage_options=options)
    raw = fsspec.filesystem("s3", skip_instance_cache=True, use_listings_cache=False, **options)
    return Backend(store, raw, root)


@pytest.fixture
def store(backend: Backend) -> BlobStore:
    return backend.store


def write_file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_put_file_get_file_round_trip(store: BlobStore, tmp_path: Path) -> None:
    data = b"hello blobs\n" * 100
    ref = store.put_file(write_file(tmp_path / "src.txt", data))
    assert ref == BlobRef(digest_of(data), len(data))
    dest = tmp_path / "out" / "nested" / "copy.txt"
    assert store.get_file(ref.digest, dest) == len(data)
    assert dest.read_bytes() == data
    assert store.exists(ref.digest)
    assert store.size(ref.digest) == len(data)


def test_objects_use_the_documented_layout(backend: Backend) -> None:
    ref = backend.store.put_bytes(b"layout")
    assert backend.objects() == [backend.raw._strip_protocol(backend.object_path(ref.digest))]


def test_get_file_replaces_existing_dest(store: BlobStore, tmp_path: Path) -> None:
    ref = store.put_bytes(b"new")
    dest = write_file(tmp_path / "dest.bin", b"old contents")
    store.get_file(ref.digest, dest)
    assert dest.read_bytes() == b"new"


def test_same_bytes_twice_are_stored_once(backend: Backend, tmp_path: Path) -> None:
    data = os.urandom(1000)
    first = backend.store.put_bytes(data)
    second = backend.store.put_bytes(data)
    third = backend.store.put_file(write_file(tmp_path / "same.bin", data))
    assert first == second == third
    assert len(backend.objects()) == 1


def test_existing_object_is_not_written_again(backend: Backend, tmp_path: Path) -> None:
    ref = backend.store.put_bytes(b"original")
    backend.raw.pipe_file(backend.object_path(ref.digest), b"tampered")
    assert backend.store.put_bytes(b"original") == ref
    assert backend.store.put_file(write_file(tmp_path / "f", b"original")) == ref
    assert backend.raw.cat_file(backend.object_path(ref.digest)) == b"tampered"


def test_large_file_streams_round_trip(store: BlobStore, tmp_path: Path) -> None:
    size = 20 * 1024 * 1024 + 123
    src = tmp_path / "big.bin"
    hasher = blake3.blake3()
    with src.open("wb") as out:
        remaining = size
        while remaining:
            chunk = os.urandom(min(remaining, 3 * 1024 * 1024))
            hasher.update(chunk)
            out.write(chunk)
            remaining -= len(chunk)
    ref = store.put_file(src)
    assert ref == BlobRef("blake3:" + hasher.hexdigest(), size)
    dest = tmp_path / "big-copy.bin"
    assert store.get_file(ref.digest, dest) == size
    assert digest_of(dest.read_bytes()) == ref.digest


def test_put_file_reads_in_chunks(
    store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = write_file(tmp_path / "chunks.bin", os.urandom(2 * CHUNK_SIZE + 10))
    sizes: list[int] = []

    class Recording(io.FileIO):
        def read(self, size: int = -1) -> bytes:
            sizes.append(size)
            return super().read(size)

    monkeypatch.setattr(blobs, "_open_source", lambda path: Recording(os.fspath(path), "rb"))
    store.put_file(src)
    assert sizes
    assert all(0 < size <= CHUNK_SIZE for size in sizes)


def test_put_bytes_read_bytes_round_trip(store: BlobStore) -> None:
    for data in (b"", b"x", os.urandom(CHUNK_SIZE + 1)):
        ref = store.put_bytes(data)
        assert ref == BlobRef(digest_of(data), len(data))
        assert store.read_bytes(ref.digest) == data


def test_put_bytes_accepts_bytearray_and_refuses_str(store: BlobStore) -> None:
    assert store.put_bytes(bytearray(b"abc")).digest == digest_of(b"abc")
    with pytest.raises(InvalidArgumentError):
        store.put_bytes("abc")  # type: ignore[arg-type]


def test_corrupted_object_is_refused(backend: Backend, tmp_path: Path) -> None:
    ref = backend.store.put_bytes(b"precious model weights")
    backend.raw.pipe_file(backend.object_path(ref.digest), b"bit rot!")
    dest = tmp_path / "dl" / "weights.bin"
    with pytest.raises(IntegrityError) as info:
        backend.store.get_file(ref.digest, dest)
    assert ref.digest in str(info.value)
    assert digest_of(b"bit rot!") in str(info.value)
    assert info.value.details["actual"] == digest_of(b"bit rot!")
    assert not dest.exists()
    assert os.listdir(dest.parent) == []
    with pytest.raises(IntegrityError):
        backend.store.read_bytes(ref.digest)


def test_transient_corruption_is_retried_once(
    store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = store.put_bytes(b"good bytes")
    real_open = BlobStore._open_object
    calls: list[int] = []

    def flaky(self: BlobStore, key: str, digest: str) -> Any:
        calls.append(1)
        if len(calls) % 2 == 1:
            return io.BytesIO(b"garbage")
        return real_open(self, key, digest)

    monkeypatch.setattr(BlobStore, "_open_object", flaky)
    folder = tmp_path / "dl"
    assert store.get_file(ref.digest, folder / "retry.bin") == len(b"good bytes")
    assert (folder / "retry.bin").read_bytes() == b"good bytes"
    assert [p.name for p in folder.iterdir()] == ["retry.bin"]
    assert store.read_bytes(ref.digest) == b"good bytes"
    assert len(calls) == 4


def test_missing_digest(store: BlobStore, tmp_path: Path) -> None:
    digest = digest_of(b"never stored")
    assert not store.exists(digest)
    dest = tmp_path / "dl" / "missing.bin"
    with pytest.raises(ArtifactNotFoundError, match=digest):
        store.get_file(digest, dest)
    assert not dest.parent.exists()
    with pytest.raises(NotFoundError):
        store.read_bytes(digest)
    with pytest.raises(NotFoundError):
        store.size(digest)


def test_exists_sees_external_delete(backend: Backend) -> None:
    ref = backend.store.put_bytes(b"short-lived")
    assert backend.store.exists(ref.digest)
    backend.raw.rm_file(backend.object_path(ref.digest))
    assert not backend.store.exists(ref.digest)
    with pytest.raises(NotFoundError):
        backend.store.size(ref.digest)
    assert backend.store.put_bytes(b"short-lived") == ref
    assert backend.store.read_bytes(ref.digest) == b"short-lived"


@pytest.mark.parametrize("digest", MALFORMED_DIGESTS)
def test_malformed_digest(store: BlobStore, tmp_path: Path, digest: Any) -> None:
    for call in (
        store.exists,
        store.size,
        store.read_bytes,
        lambda d: store.get_file(d, tmp_path / "x"),
        BlobStore.validate_digest,
    ):
        with pytest.raises(InvalidArgumentError, match="digest"):
            call(digest)
    assert not (tmp_path / "x").exists()


def test_validate_digest_returns_good_digest() -> None:
    digest = digest_of(b"ok")
    assert BlobStore.validate_digest(digest) == digest


def test_failed_put_leaves_nothing_behind(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = write_file(tmp_path / "src.bin", os.urandom(3 * CHUNK_SIZE))

    class Failing(io.FileIO):
        reads = 0

        def read(self, size: int = -1) -> bytes:
            Failing.reads += 1
            if Failing.reads == 2:
                raise OSError("disk fell off")
            return super().read(size)

    backend.store.put_bytes(b"something else")  # so the folders exist
    before = backend.objects()
    monkeypatch.setattr(blobs, "_open_source", lambda path: Failing(os.fspath(path), "rb"))
    with pytest.raises(OSError, match="disk fell off"):
        backend.store.put_file(src)
    assert Failing.reads == 2
    assert backend.objects() == before
    assert backend.temp_files() == []
    assert not backend.store.exists(digest_of(src.read_bytes()))


def test_local_folder_created_on_first_write(tmp_path: Path) -> None:
    root = tmp_path / "a" / "b"
    store = BlobStore(str(root))
    assert not root.exists()
    assert not store.exists(digest_of(b""))
    ref = store.put_bytes(b"first")
    assert (root / "blake3" / ref.digest[7:9] / ref.digest[7:]).read_bytes() == b"first"


def test_file_uri(tmp_path: Path) -> None:
    uri = (tmp_path / "blobs").as_uri()
    store = BlobStore(uri)
    ref = store.put_bytes(b"via file uri")
    assert store.uri == uri
    assert (tmp_path / "blobs" / "blake3" / ref.digest[7:9] / ref.digest[7:]).is_file()


def test_repr_hides_credentials_in_uri(tmp_path: Path) -> None:
    store = BlobStore("memory://user:hunter2@host/blobs")
    assert "hunter2" not in repr(store)
    store = BlobStore(str(tmp_path))
    assert str(tmp_path) in repr(store)


def test_bad_uri() -> None:
    with pytest.raises(InvalidArgumentError):
        BlobStore("")
    with pytest.raises(InvalidArgumentError):
        BlobStore("nosuchprotocol-xyz://bucket")


def test_missing_s3fs(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_s3fs(*args: Any, **kwargs: Any) -> Any:
        raise ImportError("Install s3fs to access S3")

    monkeypatch.setattr(fsspec.core, "url_to_fs", no_s3fs)
    with pytest.raises(MissingDependencyError, match=r"loopml\[s3\]"):
        BlobStore("s3://bucket/prefix")


@pytest.mark.s3
def test_unreachable_s3_is_store_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    secret = "very-secret-value"
    store = BlobStore(
        "s3://bucket/prefix",
        storage_options={
            "key": "some-key-id",
            "secret": secret,
            "client_kwargs": {
                "endpoint_url": f"http://127.0.0.1:{port}",
                "region_name": "us-east-1",
            },
            "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 1},
        },
    )
    with pytest.raises(StoreUnavailableError) as info:
        store.exists(digest_of(b"x"))
    assert "s3://bucket/prefix" in str(info.value)
    assert secret not in str(info.value)
    assert info.value.details == {"uri": "s3://bucket/prefix"}


def test_memory_filesystem_works_like_an_object_store() -> None:
    store = BlobStore(f"memory://loopml-{uuid.uuid4().hex}")
    ref = store.put_bytes(b"in memory")
    assert store.exists(ref.digest)
    assert store.read_bytes(ref.digest) == b"in memory"


def test_batch_put_get_and_which_exist(store: BlobStore, tmp_path: Path) -> None:
    sources = []
    for i, size in enumerate([0, 10, blobs.SMALL_FILE_SIZE + 5, 3]):
        path = tmp_path / f"src{i}"
        path.write_bytes(os.urandom(size))
        sources.append(path)
    sources.append(tmp_path / "src1")  # a repeat is stored once
    stored: list[BlobRef] = []
    done: list[int] = []
    refs = store.put_files(sources, progress=done.append, on_stored=stored.append)
    assert [r.size for r in refs] == [p.stat().st_size for p in sources]
    assert refs[1] == refs[4]
    assert len(stored) == 4
    assert done == [r.size for r in refs]
    assert store.put_files(sources[:2], on_stored=stored.append) == refs[:2]
    assert len(stored) == 4  # nothing new
    missing = "blake3:" + "0" * 64
    assert store.which_exist([r.digest for r in refs] + [missing]) == {r.digest for r in refs}
    targets = [(r.digest, tmp_path / "out" / f"f{i}") for i, r in enumerate(refs)]
    store.get_files(targets)
    for (_, dest), source in zip(targets, sources, strict=True):
        assert dest.read_bytes() == source.read_bytes()
