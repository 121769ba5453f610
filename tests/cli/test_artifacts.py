"""``loopml artifacts``."""

from __future__ import annotations

from pathlib import Path


def test_ls(cli, seeded) -> None:
    result = cli("artifacts", "ls", seeded.alpha)
    assert result.exit_code == 0, result.output
    assert "notes.txt" in result.stdout
    assert "eval/" in result.stdout
    assert "eval/report.json" not in result.stdout


def test_ls_recursive_json(cli_json, seeded) -> None:
    listed = cli_json("artifacts", "ls", seeded.alpha, "--recursive", "--json")
    assert [(a["path"], a["is_dir"]) for a in listed] == [
        ("eval/report.json", False),
        ("notes.txt", False),
    ]
    assert listed[1]["size"] == 5


def test_ls_folder(cli_json, seeded) -> None:
    listed = cli_json("artifacts", "ls", seeded.alpha, "eval", "--json")
    assert [a["path"] for a in listed] == ["eval/report.json"]


def test_ls_empty(cli, seeded) -> None:
    result = cli("artifacts", "ls", seeded.beta)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "has no artifacts" in result.stderr


def test_get_everything(cli, seeded, tmp_path: Path) -> None:
    dest = tmp_path / "downloads"
    result = cli("artifacts", "get", seeded.alpha, "-o", str(dest))
    assert result.exit_code == 0, result.output
    assert Path(result.stdout.strip()) == dest
    assert (dest / "notes.txt").read_text() == "hello"
    assert (dest / "eval" / "report.json").exists()


def test_get_one_file(cli, seeded, tmp_path: Path) -> None:
    result = cli("artifacts", "get", seeded.alpha, "eval/report.json", "--output", str(tmp_path))
    assert result.exit_code == 0, result.output
    local = Path(result.stdout.strip())
    assert local == tmp_path / "report.json"
    assert '"score": 0.9' in local.read_text()


def test_get_missing_artifact(cli, seeded, tmp_path: Path) -> None:
    result = cli("artifacts", "get", seeded.alpha, "nope.txt", "-o", str(tmp_path))
    assert result.exit_code == 3
    assert result.stderr.startswith("Error: ")
    assert "nope.txt" in result.stderr


def test_get_unsafe_path(cli, seeded, tmp_path: Path) -> None:
    result = cli("artifacts", "get", seeded.alpha, "../escape", "-o", str(tmp_path))
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_unknown_run(cli, seeded) -> None:
    result = cli("artifacts", "ls", "a" * 32)
    assert result.exit_code == 3
    assert result.stderr.startswith("Error: No run with id")
