"""README.md's configuration reference is the one generated from the settings schema."""

from __future__ import annotations

from hub.config import PROJECT_ROOT
from hub.config_doc import reference


def test_readme_configuration_reference_matches_settings_schema() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    assert reference() in readme, "run `hub config-doc` and paste it into README.md"
