"""RELIABILITY.md F1 for data: an add killed at any moment leaves no half version."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loopml import data
from loopml.storage.uris import clear_store_cache

pytestmark = pytest.mark.slow

_ADD = """
import sys
import loopml.data
loopml.data.add("big", sys.argv[1])
print("done", flush=True)
"""


def _env(store: Path, cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"LOOPML_TRACKING_URI": str(store), "LOOPML_CACHE_DIR": str(cache)})
    return env


def _check_store(store: Path, out: Path) -> list[int]:
    """Every recorded version is complete: its manifest and every file verify."""
    clear_store_cache()
    with sqlite3.connect(store / "loopml.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    try:
        versions = data.list_versions("big", tracking_uri=str(store))
    except LookupError:
        return []
    for version in versions:
        version.materialize(out / f"v{version.version}")  # verifies every blob
        assert len(list((out / f"v{version.version}").rglob("*.bin"))) == version.num_files
    return [v.version for v in versions]


def test_killed_adds_leave_no_half_version(tmp_path: Path) -> None:
    source = tmp_path / "source"
    for folder in range(6):
        (source / f"d{folder}").mkdir(parents=True)
        for i in range(60):
            (source / f"d{folder}" / f"f{i}.bin").write_bytes(os.urandom(32 * 1024))
    store, cache = tmp_path / "store", tmp_path / "cache"
    rng = random.Random(1234)
    outcomes = []
    for attempt in range(8):
        (source / "d0" / "f0.bin").write_bytes(os.urandom(32 * 1024))  # each add has news
        proc = subprocess.Popen(
            [sys.executable, "-c", _ADD, str(source)],
            env=_env(store, cache),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.05, 1.5))
        proc.send_signal(signal.SIGKILL)
        stdout, _ = proc.communicate()
        outcomes.append(b"done" in stdout)
        _check_store(store, tmp_path / f"out{attempt}")
    # after all the kills a normal add still works and is complete
    result = subprocess.run(
        [sys.executable, "-c", _ADD, str(source)],
        env=_env(store, cache),
        capture_output=True,
        check=True,
        timeout=120,
    )
    assert b"done" in result.stdout
    versions = _check_store(store, tmp_path / "final")
    assert versions
    assert len(versions) >= sum(outcomes)
