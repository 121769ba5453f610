"""Fixtures for the data API: the same tests on SQLite and on PostgreSQL metadata."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import loopml


@pytest.fixture
def data_store(backend_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the data API at an empty store on each backend (blobs in a local folder)."""
    monkeypatch.setenv("LOOPML_ARTIFACTS_URI", str(tmp_path / "blobs"))
    loopml.set_tracking_uri(backend_url)
    return backend_url


def settle() -> None:
    """Wait past the stat cache's racy-timestamp margin, so just-written files are cached."""
    time.sleep(0.12)


def make_tree(root: Path, files: dict[str, bytes | str]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return root
