"""Tracking URIs and artifact URIs resolve to the documented stores, S3 included."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import loopml
from loopml.config import Settings
from loopml.errors import InvalidArgumentError, MissingDependencyError
from loopml.storage.uris import open_store, resolve_location
from loopml.testing.s3 import S3Server, moto_s3_server


def test_default_is_embedded_folder(tmp_path: Path) -> None:
    location = resolve_location(settings=Settings())
    assert location.db_url == f"sqlite:///{tmp_path / '.loopml' / 'loopml.db'}"
    assert location.artifacts_uri == str(tmp_path / ".loopml" / "blobs")
    loopml.Client().create_experiment("created-on-first-use")
    assert (tmp_path / ".loopml" / "loopml.db").is_file()


def test_env_then_argument(tmp_path: Path) -> None:
    settings = Settings(tracking_uri=str(tmp_path / "env"), artifacts_uri=str(tmp_path / "art"))
    assert resolve_location(settings=settings).db_url.endswith("env/loopml.db")
    assert resolve_location(settings=settings).artifacts_uri == str(tmp_path / "art")
    given = resolve_location(f"sqlite:///{tmp_path / 'x' / 'm.db'}", settings=Settings())
    assert given.artifacts_uri == str(tmp_path / "x" / "blobs")
    assert resolve_location(f"file://{tmp_path / 'f'}", settings=Settings()).db_url.endswith(
        "f/loopml.db"
    )


@pytest.mark.parametrize(
    ("uri", "match"),
    [
        ("http://", "names no host"),
        ("ftp://host/x", "unknown scheme"),
        ("mysql://root@127.0.0.1/db", "unknown scheme"),
    ],
)
def test_unsupported_uris(uri: str, match: str) -> None:
    with pytest.raises(InvalidArgumentError, match=match):
        resolve_location(uri, settings=Settings())


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def fake_import(name: str, *args: object, **kwargs: object) -> object:
        if name == "psycopg":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(MissingDependencyError, match=r"loopml\[postgres\]"):
        open_store("postgresql://postgres@127.0.0.1/test", settings=Settings())


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with moto_s3_server() as server:
        server.create_bucket("loopml-artifacts")
        yield server


@pytest.mark.s3
def test_artifacts_on_s3(s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A whole run with its artifacts on S3 (moto on 127.0.0.1), chosen by settings alone."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("LOOPML_ARTIFACTS_URI", "s3://loopml-artifacts/team")
    monkeypatch.setenv("LOOPML_S3_ENDPOINT_URL", s3.endpoint_url)
    client = loopml.Client(str(tmp_path / "meta"))
    run_id = client.create_run(client.create_experiment("s3")).run_id
    client.log_dict(run_id, {"a": 1}, "cfg/a.json")
    src = tmp_path / "big.bin"
    src.write_bytes(bytes(range(256)) * 40_000)
    client.log_artifact(run_id, src, "data")
    out = Path(client.download_artifacts(run_id, "", tmp_path / "out"))
    assert (out / "data" / "big.bin").read_bytes() == src.read_bytes()
    assert (out / "cfg" / "a.json").is_file()
    assert client.store.blobs.uri.startswith("s3://loopml-artifacts/team")  # type: ignore[attr-defined]


def test_http_uris_open_the_remote_store() -> None:
    from loopml.storage.rest import RestStore
    from loopml.storage.uris import open_store

    store = open_store("http://127.0.0.1:5999/")
    assert isinstance(store, RestStore)
    assert store.uri == "http://127.0.0.1:5999"
