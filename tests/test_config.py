from __future__ import annotations

import pytest

from loopml.config import Settings
from loopml.errors import InvalidArgumentError


def test_defaults_and_env_mapping() -> None:
    assert Settings.from_env({}) == Settings()
    settings = Settings.from_env(
        {"LOOPML_TRACKING_URI": "sqlite:///x.db", "LOOPML_FLUSH_INTERVAL": "0.5", "OTHER": "1"}
    )
    assert settings.tracking_uri == "sqlite:///x.db"
    assert settings.flush_interval == 0.5


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LOOPML_FLUSH_INTERVAL", "soon"),
        ("LOOPML_FLUSH_INTERVAL", "-1"),
        ("LOOPML_FLUSH_MAX_POINTS", "1.5"),
        ("LOOPML_FLUSH_MAX_POINTS", "0"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(InvalidArgumentError, match=name):
        Settings.from_env({name: value})


def test_read_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOPML_HEARTBEAT_TIMEOUT", "5")
    assert Settings.from_env().heartbeat_timeout == 5.0
