"""``loopml experiments``."""

from __future__ import annotations


def test_create_then_list(cli, cli_json) -> None:
    created = cli("experiments", "create", "first", "--description", "the first one")
    assert created.exit_code == 0, created.output
    assert "Created experiment 'first'" in created.stdout

    listed = cli("experiments", "ls")
    assert listed.exit_code == 0
    assert "first" in listed.stdout
    assert "the first one" in listed.stdout

    experiments = cli_json("experiments", "ls", "--json")
    assert [(e["name"], e["description"], e["lifecycle_stage"]) for e in experiments] == [
        ("first", "the first one", "active")
    ]
    assert set(experiments[0]) == {
        "experiment_id",
        "name",
        "description",
        "lifecycle_stage",
        "creation_time",
        "last_update_time",
        "tags",
    }


def test_create_json(cli_json) -> None:
    created = cli_json("experiments", "create", "x", "--json")
    assert created == {"experiment_id": created["experiment_id"], "name": "x"}
    assert created["experiment_id"].isdigit()


def test_archive_and_restore_by_name_or_id(cli, cli_json) -> None:
    exp_id = cli_json("experiments", "create", "old", "--json")["experiment_id"]

    archived = cli("experiments", "archive", "old")
    assert archived.exit_code == 0, archived.output
    assert "Archived experiment 'old'" in archived.stdout
    assert cli_json("experiments", "ls", "--json") == []
    everything = cli_json("experiments", "ls", "--all", "--json")
    assert [(e["name"], e["lifecycle_stage"]) for e in everything] == [("old", "archived")]
    assert "archived" in cli("experiments", "ls", "--all").stdout

    restored = cli_json("experiments", "restore", exp_id, "--json")
    assert restored["lifecycle_stage"] == "active"
    assert [e["name"] for e in cli_json("experiments", "ls", "--json")] == ["old"]


def test_duplicate_name_is_a_conflict(cli) -> None:
    assert cli("experiments", "create", "same").exit_code == 0
    result = cli("experiments", "create", "same")
    assert result.exit_code == 4
    assert result.stderr.startswith("Error: An experiment named 'same' already exists")
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_experiment_is_not_found(cli) -> None:
    result = cli("experiments", "archive", "ghost")
    assert result.exit_code == 3
    assert result.stderr.strip() == "Error: No experiment named 'ghost'."
    assert cli("experiments", "restore", "12345").exit_code == 3


def test_invalid_name_is_a_bad_argument(cli) -> None:
    result = cli("experiments", "create", " padded ")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ")
    assert "Traceback" not in result.output
