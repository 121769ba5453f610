"""Blobs, artifacts and datasets through a live server: path safety (RELIABILITY S1), upload
limits and verification (V2, F1, F3), streaming round trips, and ``loopml.data`` end to end."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Iterator
from http.client import HTTPConnection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import blake3
import httpx
import pytest

import loopml
from loopml.errors import IntegrityError, LoopmlError, StoreUnavailableError
from loopml.server import deps
from loopml.server._uploads import PartialUpload
from loopml.server.app import ServerConfig
from loopml.server.routes import artifacts as artifact_routes
from loopml.server.routes import datasets as dataset_routes
from loopml.storage.blobs import BlobRef
from loopml.storage.rest import RestStore
from loopml.storage.rest.artifacts import RemoteBlobStore
from loopml.storage.sql import SqlStore
from loopml.testing.server import live_server

OCTETS = {"Content-Type": "application/octet-stream"}
UNSAFE_PATHS = [
    "../escape.txt",
    "a/../../escape.txt",
    "..%2fescape.txt",
    "%252e%252e%252fescape.txt",
    "..\\escape.txt",
    "/etc/passwd",
    "C:/x",
    "nul\x00.txt",
]
#: raw URL paths (sent byte for byte, no client normalisation) after /api/v1/blobs/
UNSAFE_DIGEST_PATHS = [
    "../../../sentinel.txt",
    "..%2f..%2f..%2fsentinel.txt",
    "%252e%252e%252f%252e%252e%252fsentinel.txt",
    "..%5C..%5Csentinel.txt",
    "%2Fetc%2Fpasswd",
    "/etc/passwd",
    "C:%2Fx",
    "blake3:%00" + "0" * 63,
    "blake3:" + "0" * 63 + "%00",
    "blake3:../../../../sentinel.txt",
]


def _digest(data: bytes) -> str:
    return "blake3:" + blake3.blake3(data).hexdigest()


def _raw(base_url: str, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
    """Send ``path`` exactly as written (httpx would resolve ``..`` before sending)."""
    parts = urlsplit(base_url)
    conn = HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        headers = dict(OCTETS) if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def _files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.fixture
def spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the server keeps uploads while they arrive (its blob folder's staging folder);
    the temp folder, where nothing should be left either, is a private one."""
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    return tmp_path / "server-blobs" / "tmp" / "uploads"


@pytest.fixture
def blob_root(tmp_path: Path) -> Path:
    return tmp_path / "server-blobs"  # as tests/server/conftest.py opens it


@pytest.fixture
def api(server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_url + "/api/v1", timeout=30) as client:
        yield client


@pytest.fixture
def run_id(server_store: SqlStore) -> str:
    experiment = server_store.create_experiment("artifacts-api").experiment_id
    return server_store.create_run(experiment).run_id


def _objects(blob_root: Path) -> list[Path]:
    return _files_under(blob_root / "blake3")


# ---------------------------------------------------------------------------- S1: paths


def test_unsafe_artifact_paths_are_refused(
    api: httpx.Client, server_store: SqlStore, run_id: str, tmp_path: Path
) -> None:
    sentinel = tmp_path / "escape.txt"
    sentinel.write_text("keep")
    before = sentinel.stat()
    ref = server_store.blobs.put_bytes(b"payload")
    for path in UNSAFE_PATHS:
        body = {"path": path, "digest": ref.digest, "size": ref.size}
        answers = [
            api.post(f"/runs/{run_id}/artifacts", json=body),
            api.post(f"/runs/{run_id}/artifacts/batch", json={"files": [body]}),
            api.get(f"/runs/{run_id}/artifacts/file", params={"path": path}),
            api.get(f"/runs/{run_id}/artifacts/content", params={"path": path}),
            api.get(f"/runs/{run_id}/artifacts", params={"path": path}),
        ]
        for answer in answers:
            assert answer.status_code == 400, (path, answer.request.url, answer.text)
            assert answer.json()["error_code"] == "UNSAFE_PATH"
    assert server_store.list_artifacts(run_id) == []
    assert sentinel.read_text() == "keep"
    assert sentinel.stat().st_mtime_ns == before.st_mtime_ns


@pytest.mark.parametrize("tail", UNSAFE_DIGEST_PATHS)
def test_unsafe_blob_digests_are_refused(
    server_url: str, blob_root: Path, tmp_path: Path, tail: str, spool: Path
) -> None:
    sentinel = tmp_path / "sentinel.txt"
    sentinel.write_text("keep")
    before = sentinel.stat()
    for method, suffix, body in [
        ("GET", "", None),
        ("GET", "/exists", None),
        ("GET", "/size", None),
        ("PUT", "", b"overwritten"),
    ]:
        status, answer = _raw(server_url, method, f"/api/v1/blobs/{tail}{suffix}", body)
        assert status in (400, 404), (method, tail, suffix, status, answer)
        assert isinstance(answer, dict)
        assert answer
        if status == 400:
            assert answer["error_code"] == "INVALID_ARGUMENT"
            assert "digest" in answer["message"]
    status, answer = _raw(server_url, "GET", f"/api/v1/runs/{'0' * 32}/artifacts/{tail}")
    assert status in (400, 404)
    assert isinstance(answer, dict)
    assert answer
    assert sentinel.read_text() == "keep"
    assert sentinel.stat().st_mtime_ns == before.st_mtime_ns
    assert _objects(blob_root) == []
    assert _files_under(spool) == []


def test_bad_digests_in_queries(api: httpx.Client) -> None:
    answer = api.post("/blobs/which-exist", json={"digests": ["../x"]})
    assert answer.status_code == 400
    assert answer.json()["details"]["field"] == "digest"
    answer = api.get("/dataset-versions", params={"digest": "../../etc/passwd"})
    assert answer.status_code == 400


def test_every_route_declares_a_role() -> None:
    for router in (artifact_routes.router, dataset_routes.router):
        for route in router.routes:
            policies = [
                getattr(d.call, deps.POLICY_ATTRIBUTE, None)
                for d in route.dependant.dependencies  # type: ignore[attr-defined]
            ]
            methods = route.methods  # type: ignore[attr-defined]
            expected = deps.Role.READER if methods <= {"GET"} else deps.Role.WRITER
            if route.path.endswith("/which-exist"):
                expected = deps.Role.READER  # a POST that only reads
            if route.path.endswith("/upload"):
                expected = deps.Role.WRITER  # a GET that only uploaders need
            assert policies == [expected], (route.path, methods)


# ---------------------------------------------------------------------------- uploads


def test_blob_round_trip_over_http(api: httpx.Client, blob_root: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    digest = _digest(data)
    assert api.get(f"/blobs/{digest}/exists").json() == {"digest": digest, "exists": False}
    stored = api.put(f"/blobs/{digest}", content=data, headers=OCTETS)
    assert stored.status_code == 200, stored.text
    assert stored.json() == {"digest": digest, "size": len(data)}
    assert api.get(f"/blobs/{digest}/exists").json()["exists"] is True
    assert api.get(f"/blobs/{digest}/size").json()["size"] == len(data)
    missing = _digest(b"missing")
    present = api.post("/blobs/which-exist", json={"digests": [digest, missing]})
    assert present.json() == {"present": [digest]}
    with api.stream("GET", f"/blobs/{digest}") as response:
        assert response.headers["content-type"] == "application/octet-stream"
        assert response.headers["content-length"] == str(len(data))
        assert b"".join(response.iter_bytes()) == data
    absent = api.get(f"/blobs/{missing}")
    assert absent.status_code == 404
    assert absent.json()["error_code"] == "ARTIFACT_NOT_FOUND"
    assert str(blob_root) not in absent.text  # no server path in errors
    assert len(_objects(blob_root)) == 1


def test_upload_that_does_not_match_its_digest_is_refused(
    api: httpx.Client, rest_store: RestStore, blob_root: Path, spool: Path
) -> None:
    claimed = _digest(b"what the client promised")
    answer = api.put(f"/blobs/{claimed}", content=b"something else", headers=OCTETS)
    assert answer.status_code == 400
    body = answer.json()
    assert body["error_code"] == "DATA_CORRUPTED"
    assert body["details"]["actual"] == _digest(b"something else")
    with pytest.raises(IntegrityError, match="hash to"):
        rest_store.blobs._upload(BlobRef(claimed, 3), b"abc")  # type: ignore[attr-defined]
    assert _objects(blob_root) == []
    assert _files_under(spool) == []
    assert _files_under(blob_root / "tmp") == []


@pytest.fixture
def small_server(server_store: SqlStore) -> Iterator[str]:
    with live_server(server_store, ServerConfig(max_upload_bytes=100_000)) as url:
        yield url


@pytest.mark.parametrize("with_length", [True, False])
def test_upload_over_the_limit_leaves_nothing(
    small_server: str, blob_root: Path, spool: Path, with_length: bool
) -> None:
    data = os.urandom(3_000_000)
    digest = _digest(data)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(data), 10_000):
            yield data[start : start + 10_000]

    content: Any = data if with_length else chunks()
    with httpx.Client(base_url=small_server + "/api/v1", timeout=30) as client:
        answer = client.put(f"/blobs/{digest}", content=content, headers=OCTETS)
        assert answer.status_code == 413
        assert answer.json()["error_code"] == "PAYLOAD_TOO_LARGE"
        assert answer.json()["details"]["limit"] == 100_000
        assert client.get(f"/blobs/{digest}/exists").json()["exists"] is False
        fits = data[:100_000]  # exactly at the limit is accepted
        content = fits if with_length else iter([fits[:50_000], fits[50_000:]])
        answer = client.put(f"/blobs/{_digest(fits)}", content=content, headers=OCTETS)
        assert answer.status_code == 200, answer.text
    assert [p.name for p in _objects(blob_root)] == [_digest(fits).removeprefix("blake3:")]
    assert _files_under(spool) == []
    assert _files_under(blob_root / "tmp") == []
    remote = RestStore(small_server, retry_seconds=0)
    try:
        with pytest.raises(LoopmlError, match="at most"):
            remote.blobs.put_bytes(data)
    finally:
        remote.close()


def test_full_disk_answers_507_and_keeps_nothing(
    api: httpx.Client, monkeypatch: pytest.MonkeyPatch, blob_root: Path, spool: Path
) -> None:
    def full(self: Any, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(spool / "x"))

    monkeypatch.setattr(PartialUpload, "write", full)
    data = os.urandom(2 * 1024 * 1024)
    answer = api.put(f"/blobs/{_digest(data)}", content=data, headers=OCTETS)
    assert answer.status_code == 507
    assert answer.json()["error_code"] == "STORE_UNAVAILABLE"
    assert str(spool) not in answer.text
    assert _files_under(spool) == []
    assert _objects(blob_root) == []
    assert api.get(f"/blobs/{_digest(data)}/exists").json()["exists"] is False  # still up


# ---------------------------------------------------------------------------- artifacts


def test_large_artifact_round_trip_streams(
    server_url: str,
    run_id: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    spool: Path,
) -> None:
    writes: list[int] = []
    write = PartialUpload.write

    def counted(self: Any, data: bytes) -> None:
        writes.append(len(data))
        write(self, data)

    monkeypatch.setattr(PartialUpload, "write", counted)
    source = tmp_path / "big.bin"
    data = os.urandom(20 * 1024 * 1024)
    source.write_bytes(data)
    client = loopml.Client(server_url)
    info = client.log_artifact(run_id, source, "weights")
    assert (info.path, info.size, info.digest) == ("weights/big.bin", len(data), _digest(data))
    # the server wrote the upload in steps of about a megabyte, never holding it whole
    assert len(writes) > 10
    assert max(writes) <= 2 * artifact_routes._SPOOL_STEP
    uploads = len(writes)
    assert client.log_artifact(run_id, source, "copy").digest == info.digest
    client.log_artifact(run_id, source, "third")
    assert len(writes) == uploads  # the server had the bytes: nothing was uploaded again
    out = Path(client.download_artifacts(run_id, "weights/big.bin", tmp_path / "out"))
    assert blake3.blake3(out.read_bytes()).hexdigest() == info.digest.removeprefix("blake3:")
    folder = Path(client.download_artifacts(run_id, "", tmp_path / "all"))
    assert sorted(p.relative_to(folder).as_posix() for p in _files_under(folder)) == [
        "copy/big.bin",
        "third/big.bin",
        "weights/big.bin",
    ]
    assert _files_under(spool) == []  # the server's temporary copies are gone
    with httpx.Client(base_url=server_url + "/api/v1", timeout=30) as http_client:
        answer = http_client.get(
            f"/runs/{run_id}/artifacts/content", params={"path": "weights/big.bin"}
        )
    assert answer.content == data
    assert "big.bin" in answer.headers["content-disposition"]


def test_corrupted_blob_on_the_server_is_never_delivered(
    rest_store: RestStore, server_store: SqlStore, run_id: str, tmp_path: Path, blob_root: Path
) -> None:
    source = tmp_path / "data.csv"
    source.write_text("a,b\n1,2\n")
    info = rest_store.put_artifact(run_id, "data.csv", source)
    assert info.digest is not None
    hex_digest = info.digest.removeprefix("blake3:")
    (blob_root / "blake3" / hex_digest[:2] / hex_digest).write_text("a,b\n1,3\n")
    dest = tmp_path / "out.csv"
    with pytest.raises(IntegrityError, match="corrupted") as caught:
        rest_store.get_artifact(run_id, "data.csv", dest)
    assert str(blob_root) not in str(caught.value)
    assert not dest.exists()
    assert list(tmp_path.glob(".loopml-get-*")) == []


def test_remote_blob_store_verifies_what_it_receives(
    rest_store: RestStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blobs = rest_store.blobs
    assert isinstance(blobs, RemoteBlobStore)
    assert blobs.is_local is False
    ref = blobs.put_bytes(b"right bytes")
    assert blobs.read_bytes(ref.digest) == b"right bytes"
    assert blobs.size(ref.digest) == len(b"right bytes")
    fetch = RemoteBlobStore._fetch
    calls: list[int] = []

    def flipped(self: RemoteBlobStore, digest: str, write: Any) -> tuple[str, int]:
        calls.append(1)
        write(b"wrong bytes")
        return _digest(b"wrong bytes"), 11

    monkeypatch.setattr(RemoteBlobStore, "_fetch", flipped)
    with pytest.raises(IntegrityError, match="corrupted"):
        blobs.get_file(ref.digest, tmp_path / "x")
    assert len(calls) == 2  # fetched once more before giving up
    assert not (tmp_path / "x").exists()
    assert list(tmp_path.glob(".loopml-get-*")) == []
    with pytest.raises(IntegrityError):
        blobs.read_bytes(ref.digest)
    monkeypatch.setattr(RemoteBlobStore, "_fetch", fetch)
    assert blobs.get_file(ref.digest, tmp_path / "x") == 11
    with pytest.raises(StoreUnavailableError):
        RestStore("http://127.0.0.1:9", retry_seconds=0).blobs.exists(ref.digest)


# ---------------------------------------------------------------------------- datasets


@pytest.fixture
def put_requests(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The digests of the blob uploads that reach the server."""
    seen: list[str] = []
    start = artifact_routes._start_upload

    def counting(upload: PartialUpload, offset: int) -> None:
        seen.append(upload.digest)
        start(upload, offset)

    monkeypatch.setattr(artifact_routes, "_start_upload", counting)
    return seen


def test_data_add_folder_through_the_server(
    server_url: str, tmp_path: Path, put_requests: list[str]
) -> None:
    source = tmp_path / "images"
    (source / "train").mkdir(parents=True)
    files = {
        "train/a.bin": os.urandom(2 * 1024 * 1024),
        "train/b.txt": b"hello",
        "train/dup.txt": b"hello",
        "labels.csv": b"x,y\n1,2\n",
    }
    for name, data in files.items():
        (source / name).write_bytes(data)
    version = loopml.data.add("images", source, tracking_uri=server_url)
    assert (version.version, version.num_files) == (1, 4)
    assert version.stats.files_stored == 4  # three unique files and the manifest
    assert len(put_requests) == 4
    out = version.materialize(tmp_path / "out")
    assert {p.relative_to(out).as_posix(): p.read_bytes() for p in _files_under(out)} == files
    again = loopml.data.add("images", source, tracking_uri=server_url)
    assert again.stats.created is False
    assert again.stats.bytes_stored == 0
    assert len(put_requests) == 4  # the re-add uploaded nothing
    fetched = loopml.data.get("images@v1", tracking_uri=server_url)
    assert fetched.hash == version.hash
    assert [f.path for f in fetched.files()] == sorted(files)


def test_data_add_dataframe_through_the_server(
    server_url: str, tmp_path: Path, put_requests: list[str]
) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"age": [31, 45, 27], "city": ["Oslo", "Lima", "Pune"]})
    version = loopml.data.add("people", frame, tracking_uri=server_url)
    assert (version.kind.value, version.num_rows) == ("table", 3)
    assert version.schema is not None
    out = version.materialize(tmp_path / "out")
    parquet = (out / "data.parquet").read_bytes()
    (entry,) = version.files()
    assert _digest(parquet) == entry.digest
    assert pd.read_parquet(out / "data.parquet").equals(frame)
    uploads = len(put_requests)
    again = loopml.data.add("people", frame, tracking_uri=server_url)
    assert (again.version, again.stats.created, again.stats.bytes_stored) == (1, False, 0)
    assert len(put_requests) == uploads
    listed = loopml.data.list_versions("people", tracking_uri=server_url)
    assert [v.version for v in listed] == [1]


def test_interrupted_download_is_fetched_again_then_refused(
    rest_store: RestStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ref = rest_store.blobs.put_bytes(os.urandom(3 * 1024 * 1024))
    sent: list[int] = []

    async def cut_off(reader: Any) -> Any:
        try:
            sent.append(1)
            yield reader.read(1024 * 1024)
            raise ConnectionResetError("the server went away")
        finally:
            reader.close()

    monkeypatch.setattr(artifact_routes, "_send", cut_off)
    with pytest.raises(StoreUnavailableError, match="cut off"):
        rest_store.blobs.get_file(ref.digest, tmp_path / "x")
    assert len(sent) == 2
    assert not (tmp_path / "x").exists()
    assert list(tmp_path.glob(".loopml-get-*")) == []
