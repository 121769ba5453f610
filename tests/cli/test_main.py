"""The root command: help, version, error mapping, JSON conversion and import cost."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loopml.cli import app
from loopml.cli._common import exit_code_for, to_jsonable
from loopml.entities import ArtifactInfo, Metric, RunStatus
from loopml.errors import (
    AlreadyExistsError,
    ArtifactNotFoundError,
    ExperimentNotFoundError,
    FilterSyntaxError,
    IntegrityError,
    InvalidArgumentError,
    InvalidStateError,
    LoopmlError,
    MissingDependencyError,
    ParamConflictError,
    RunNotFoundError,
    UnsafePathError,
)
from loopml.tracking.client import Client

COMMANDS = [
    [],
    ["experiments"],
    ["experiments", "ls"],
    ["experiments", "create"],
    ["experiments", "archive"],
    ["experiments", "restore"],
    ["runs"],
    ["runs", "ls"],
    ["runs", "show"],
    ["runs", "compare"],
    ["runs", "history"],
    ["artifacts"],
    ["artifacts", "ls"],
    ["artifacts", "get"],
    ["quickstart"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "loopml")
def test_every_command_has_help(runner: CliRunner, command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.stdout


def test_version(runner: CliRunner) -> None:
    from loopml import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"loopml {__version__}"


def test_no_arguments_prints_help(runner: CliRunner) -> None:
    result = runner.invoke(app, [])
    assert "Usage" in result.output
    assert "experiments" in result.output


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidArgumentError("x"), 2),
        (FilterSyntaxError("bad", text="a >> 1", position=3), 2),
        (UnsafePathError("x"), 2),
        (ExperimentNotFoundError("x"), 3),
        (RunNotFoundError("x"), 3),
        (ArtifactNotFoundError("x"), 3),
        (AlreadyExistsError("x"), 4),
        (ParamConflictError("x"), 4),
        (InvalidStateError("x"), 4),
        (IntegrityError("x"), 1),
        (MissingDependencyError("x"), 1),
        (LoopmlError("x"), 1),
        (RuntimeError("x"), 1),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v),
)
def test_exit_code_mapping(error: Exception, code: int) -> None:
    assert exit_code_for(error) == code


def test_json_conversion_is_strict_json() -> None:
    data = {
        "metric": Metric("loss", math.nan, 1, 2),
        "inf": [math.inf, -math.inf, 0.5],
        "status": RunStatus.FINISHED,
        "artifact": ArtifactInfo("a/b.txt", False, 3, "blake3:00"),
    }
    converted = to_jsonable(data)
    assert converted == {
        "metric": {"key": "loss", "value": "NaN", "timestamp": 1, "step": 2},
        "inf": ["Infinity", "-Infinity", 0.5],
        "status": "FINISHED",
        "artifact": {"path": "a/b.txt", "is_dir": False, "size": 3, "digest": "blake3:00"},
    }
    json.dumps(converted, allow_nan=False)
    assert math.isnan(float(converted["metric"]["value"]))


def test_unexpected_error_is_an_internal_error_without_traceback(
    cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(self: Client, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Client, "search_experiments", boom)
    result = cli("experiments", "ls")
    assert result.exit_code == 1
    assert "Internal error: RuntimeError: disk on fire" in result.stderr
    assert "--debug" in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_debug_shows_the_traceback(runner: CliRunner, store_uri: str) -> None:
    missing = "0" * 32
    result = runner.invoke(app, ["--debug", "-t", store_uri, "runs", "show", missing])
    assert result.exit_code == 3
    assert "Traceback" in result.stderr
    assert "RunNotFoundError" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1] == f"Error: No run with id '{missing}'."


def test_tracking_uri_from_the_environment(runner: CliRunner, store_uri: str) -> None:
    created = runner.invoke(
        app, ["experiments", "create", "from-env"], env={"LOOPML_TRACKING_URI": store_uri}
    )
    assert created.exit_code == 0, created.output
    listed = runner.invoke(app, ["-t", store_uri, "experiments", "ls", "--json"])
    assert "from-env" in [e["name"] for e in json.loads(listed.stdout)]


def test_bad_tracking_uri_is_a_bad_argument(runner: CliRunner) -> None:
    result = runner.invoke(app, ["-t", "ftp://example.org/x", "experiments", "ls"])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: The tracking URI 'ftp://example.org/x'")


def test_importing_the_cli_stays_light() -> None:
    heavy = ["sklearn", "sqlalchemy", "alembic", "matplotlib", "numpy", "loopml.storage.sql"]
    code = f"import sys, loopml.cli\nprint([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_help_does_not_open_a_store() -> None:
    code = (
        "import sys\n"
        "from loopml.cli import main\n"
        "sys.argv = ['loopml', 'runs', 'ls', '--help']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exit:\n"
        "    assert exit.code in (0, None), exit.code\n"
        "print('LOADED', [m for m in ('sqlalchemy', 'sklearn') if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "LOADED []" in out


def test_console_script_end_to_end(tmp_path: Path) -> None:
    """The installed `loopml` entry point: a real process, real exit codes and streams."""
    exe = shutil.which("loopml")
    if exe is None:
        pytest.skip("the loopml console script is not installed")
    env = {**os.environ, "LOOPML_TRACKING_URI": str(tmp_path / "store")}
    ok = subprocess.run(
        [exe, "experiments", "create", "shell"], capture_output=True, text=True, env=env
    )
    assert ok.returncode == 0, ok.stderr
    listed = subprocess.run(
        [exe, "experiments", "ls", "--json"], capture_output=True, text=True, env=env
    )
    assert [e["name"] for e in json.loads(listed.stdout)] == ["shell"]
    missing = subprocess.run(
        [exe, "runs", "show", "f" * 32], capture_output=True, text=True, env=env
    )
    assert missing.returncode == 3
    assert missing.stdout == ""
    assert missing.stderr.startswith("Error: ")
    assert "Traceback" not in missing.stderr
