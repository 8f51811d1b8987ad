"""Settings read from the environment."""

from __future__ import annotations

import pytest

from hub.config import load_settings


def test_an_empty_file_setting_switches_it_off_rather_than_naming_the_current_directory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HUB_USERS_FILE", "")
    monkeypatch.setenv("HUB_CAMERAS__CAMERAS_FILE", "")
    settings = load_settings()
    assert settings.users_file is None
    assert settings.cameras.cameras_file is None
    monkeypatch.setenv("HUB_CAMERAS__CAMERAS_FILE", "site/cameras.json")
    assert str(load_settings().cameras.cameras_file) == "site/cameras.json"
