"""Source info: which checkout a run's code came from."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import loopml
from loopml.tracking import source


def _git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    _git(folder, "init", "-q")
    (folder / "train.py").write_text("print('hi')\n")
    _git(folder, "add", "train.py")
    _git(folder, "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "first")
    return folder


def test_git_commit_and_dirty_flag(repo: Path) -> None:
    source._git_info.cache_clear()
    commit, dirty = source._git_info(str(repo))
    assert commit is not None
    assert len(commit) == 40
    assert dirty is False
    (repo / "train.py").write_text("print('changed')\n")
    source._git_info.cache_clear()
    assert source._git_info(str(repo)) == (commit, True)


def test_outside_a_checkout(tmp_path: Path) -> None:
    source._git_info.cache_clear()
    assert source._git_info(str(tmp_path)) == (None, None)


def test_installed_commands_use_the_working_directory(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo)
    installed = os.path.join(sys.prefix, "bin", "loopml")
    assert source._code_folder(installed) == str(repo)
    assert source._code_folder("<interactive>") == str(repo)
    assert source._code_folder(str(repo / "sub" / "train.py")) == str(repo / "sub")


def test_fluent_run_records_git_of_its_script(repo: Path, tmp_path: Path) -> None:
    """Git details are gathered in the background and are stored before the run ends."""
    script = repo / "train.py"
    script.write_text(
        "import loopml\n"
        "with loopml.start_run() as run:\n"
        "    loopml.log_metric('x', 1.0)\n"
        "print(run.run_id)\n"
    )
    env = {**os.environ, "LOOPML_TRACKING_URI": str(tmp_path / "store")}
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, check=True
    )
    run = loopml.Client(str(tmp_path / "store")).get_run(done.stdout.strip())
    source._git_info.cache_clear()
    commit, _ = source._git_info(str(repo))
    assert run.info.source.git_commit == commit
    assert run.info.source.git_dirty is True  # train.py was rewritten above
    assert run.info.source.entry_point == str(script)
    assert "loopml" in run.info.source.packages
