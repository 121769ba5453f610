"""Resumable blob uploads (RELIABILITY L4: "resumable after kill"): the partial file an
interrupted upload leaves, the ``GET .../upload`` / ``PUT ...?offset=N`` continuation, the
client that continues on its own, and the sweep of abandoned partial files. The kill of a
real server process mid-upload is in ``test_faults.py``."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blake3
import httpx
import pytest

from loopml.server._uploads import PartialUpload, UploadFolder
from loopml.storage.blobs import BlobStore
from loopml.storage.rest import RestStore

OCTETS = {"Content-Type": "application/octet-stream"}
MB = 1024 * 1024


def _digest(data: bytes) -> str:
    return "blake3:" + blake3.blake3(data).hexdigest()


@pytest.fixture
def uploads(tmp_path: Path) -> Path:
    return tmp_path / "server-blobs" / "tmp" / "uploads"  # as tests/server/conftest.py opens it


@pytest.fixture
def api(server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_url + "/api/v1", timeout=30) as client:
        yield client


def _cut_off(data: bytes, after: int) -> Iterator[bytes]:
    """A body that breaks the connection after ``after`` bytes."""
    for start in range(0, after, 256 * 1024):
        yield data[start : min(start + 256 * 1024, after)]
    raise httpx.WriteError("cut off by the test")


def _wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _interrupt(api: httpx.Client, data: bytes, after: int) -> None:
    digest = _digest(data)
    with pytest.raises(httpx.TransportError):
        api.put(
            f"/blobs/{digest}",
            content=_cut_off(data, after),
            headers={**OCTETS, "Content-Length": str(len(data))},
        )
    # the server notices the disconnect and lets go of the upload
    _wait_for(lambda: api.get(f"/blobs/{digest}/upload").json()["offset"] > 0)


def test_an_interrupted_upload_continues_at_the_offset_the_server_gives(
    api: httpx.Client, uploads: Path
) -> None:
    data = os.urandom(6 * MB)
    digest = _digest(data)
    assert api.get(f"/blobs/{digest}/upload").json() == {
        "digest": digest,
        "stored": False,
        "offset": 0,
    }
    _interrupt(api, data, 4 * MB)
    held = api.get(f"/blobs/{digest}/upload").json()["offset"]
    assert 0 < held <= 4 * MB
    assert [p.name for p in uploads.iterdir() if p.suffix == ".part"] == [
        digest.removeprefix("blake3:") + ".part"
    ]
    answer = api.put(
        f"/blobs/{digest}", params={"offset": held}, content=data[held:], headers=OCTETS
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"digest": digest, "size": len(data)}
    assert api.get(f"/blobs/{digest}").content == data
    assert api.get(f"/blobs/{digest}/upload").json() == {
        "digest": digest,
        "stored": True,
        "offset": 0,
    }
    assert list(uploads.iterdir()) == []  # partial and lock files gone


def test_a_wrong_offset_is_refused_with_the_right_one(api: httpx.Client) -> None:
    data = os.urandom(3 * MB)
    digest = _digest(data)
    _interrupt(api, data, 2 * MB)
    held = api.get(f"/blobs/{digest}/upload").json()["offset"]
    answer = api.put(f"/blobs/{digest}", params={"offset": held + 10}, content=b"x", headers=OCTETS)
    assert answer.status_code == 409
    assert answer.json()["details"] == {"field": "offset", "offset": held}
    assert api.get(f"/blobs/{digest}/upload").json()["offset"] == held  # kept for a retry
    for bad in ("-1", "abc", str(2**63)):
        refused = api.put(f"/blobs/{digest}", params={"offset": bad}, content=b"x", headers=OCTETS)
        assert refused.status_code == 400, bad
    assert api.get(f"/blobs/{digest}/upload").json()["offset"] == held


def test_a_continuation_that_does_not_match_the_digest_keeps_nothing(
    api: httpx.Client, uploads: Path
) -> None:
    data = os.urandom(3 * MB)
    digest = _digest(data)
    _interrupt(api, data, 2 * MB)
    held = api.get(f"/blobs/{digest}/upload").json()["offset"]
    wrong = os.urandom(len(data) - held)
    answer = api.put(f"/blobs/{digest}", params={"offset": held}, content=wrong, headers=OCTETS)
    assert answer.status_code == 400
    assert answer.json()["error_code"] == "DATA_CORRUPTED"
    assert api.get(f"/blobs/{digest}/upload").json() == {
        "digest": digest,
        "stored": False,
        "offset": 0,
    }
    assert list(uploads.iterdir()) == []


def test_a_fresh_upload_replaces_a_partial_one(api: httpx.Client) -> None:
    data = os.urandom(3 * MB)
    digest = _digest(data)
    _interrupt(api, data, 2 * MB)
    answer = api.put(f"/blobs/{digest}", content=data, headers=OCTETS)  # offset 0: afresh
    assert answer.status_code == 200
    assert api.get(f"/blobs/{digest}").content == data


class _Stream(httpx.SyncByteStream):
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks


class _CutOnce(httpx.BaseTransport):
    """Passes requests to a real transport, breaking the first blob upload after ``after``
    bytes of its body (as a dropped connection or a killed server would)."""

    def __init__(self, after: int) -> None:
        self._real = httpx.HTTPTransport()
        self._after = after
        self.cut = False
        self.sent: list[tuple[str, int]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT" and "/blobs/" in request.url.path:
            request.stream = _Stream(self._counted(request, request.stream))
        return self._real.handle_request(request)

    def _counted(self, request: httpx.Request, stream: Any) -> Iterator[bytes]:
        sent = 0
        for chunk in stream:
            if not self.cut and sent + len(chunk) > self._after:
                self.cut = True
                raise httpx.WriteError("connection dropped by the test")
            sent += len(chunk)
            yield chunk
        self.sent.append((request.url.params.get("offset", "0"), sent))

    def close(self) -> None:
        self._real.close()


def test_the_client_continues_a_cut_upload_on_its_own(
    server_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = tmp_path / "big.bin"
    data = os.urandom(12 * MB)
    source.write_bytes(data)
    transport = _CutOnce(after=8 * MB)
    remote = RestStore(server_url, retry_seconds=30, transport=transport)
    progress: list[int] = []
    try:
        with caplog.at_level(logging.INFO, logger="loopml.storage.rest.artifacts"):
            (ref,) = remote.blobs.put_files([source], progress=progress.append)
        assert transport.cut
        (offset, sent), *_ = transport.sent
        assert int(offset) > 0  # continued, not started again
        assert int(offset) + sent == len(data)
        assert "Continuing the upload" in caplog.text
        assert sum(progress) == len(data)  # progress took back what was lost
        assert ref.digest == _digest(data)
        back = tmp_path / "back.bin"
        remote.blobs.get_file(ref.digest, back)
        assert back.read_bytes() == data
    finally:
        remote.close()


def test_the_client_stops_when_the_server_stored_the_blob_already(
    server_url: str, tmp_path: Path
) -> None:
    """A lost reply to a finished upload: the server says "stored", nothing more is sent."""
    data = os.urandom(2 * MB)
    source = tmp_path / "f.bin"
    source.write_bytes(data)

    class LostReply(httpx.BaseTransport):
        def __init__(self) -> None:
            self.real = httpx.HTTPTransport()
            self.puts = 0

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            response = self.real.handle_request(request)
            if request.method == "PUT":
                self.puts += 1
                response.read()
                if self.puts == 1:
                    raise httpx.ReadError("reply lost by the test")
            return response

        def close(self) -> None:
            self.real.close()

    transport = LostReply()
    remote = RestStore(server_url, retry_seconds=30, transport=transport)
    try:
        (ref,) = remote.blobs.put_files([source])
        assert transport.puts == 1
        assert ref.digest == _digest(data)
        assert remote.blobs.exists(ref.digest)
    finally:
        remote.close()


def test_the_sweep_removes_abandoned_partial_uploads_but_not_busy_ones(tmp_path: Path) -> None:
    blobs = BlobStore(str(tmp_path / "blobs"))
    folder = UploadFolder(blobs, ttl=3600)
    old = folder.upload(_digest(b"old"))
    old.start(0)
    old.write(b"abc")
    old.release()
    busy = folder.upload(_digest(b"busy"))
    assert busy.try_lock()
    busy.start(0)
    busy.write(b"abc")
    fresh = folder.upload(_digest(b"fresh"))
    fresh.start(0)
    fresh.release()
    long_ago = time.time() - 7200
    for upload in (old, busy):
        os.utime(upload.path, (long_ago, long_ago))
    assert folder.sweep(now=time.time()) == 1
    assert not os.path.exists(old.path)
    assert os.path.exists(busy.path)  # its lock is held: being written
    assert os.path.exists(fresh.path)  # recent
    busy.release()  # its last bytes reach the file: touched now
    os.utime(busy.path, (long_ago, long_ago))
    assert folder.sweep(now=time.time()) == 1
    assert sorted(os.listdir(folder.path)) == [Path(fresh.path).name]


def test_two_requests_cannot_hold_the_same_upload(tmp_path: Path) -> None:
    folder = UploadFolder(BlobStore(str(tmp_path / "blobs")), ttl=3600)
    first = folder.upload(_digest(b"x"))
    second = folder.upload(_digest(b"x"))
    assert first.try_lock()
    assert not second.try_lock()
    first.release(discard=True)  # deletes the lock file while holding it
    assert second.try_lock()
    third = PartialUpload(folder.path, _digest(b"x"))
    assert not third.try_lock()
    second.release()
