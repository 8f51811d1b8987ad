"""The configuration reference (a Markdown table) generated from the settings schema, so
README.md cannot drift from what the hub reads (a test compares them)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from hub.config import PROJECT_ROOT, Settings


def reference() -> str:
    """The table of every setting: environment variable, default, description."""
    rows = ["| variable | default | description |", "| --- | --- | --- |"]
    rows.extend(_rows(Settings, "HUB_"))
    return "\n".join(rows)


def _rows(model: type[BaseModel], prefix: str) -> list[str]:
    out: list[str] = []
    nested: list[tuple[str, type[BaseModel]]] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            nested.append((name, annotation))
            continue
        out.append(f"| `{prefix}{name.upper()}` | {_default(field)} | {field.description or ''} |")
    for name, sub in nested:
        out.extend(_rows(sub, f"{prefix}{name.upper()}__"))
    return out


def _default(field: FieldInfo) -> str:
    value: Any = field.get_default(call_default_factory=True)
    if isinstance(value, SecretStr):
        return "(development secret)"
    if value is None or value == "":
        return "(empty)"
    if isinstance(value, list):
        return "`[]`" if not value else f"{len(value)} entries"
    text = str(value)
    root = str(PROJECT_ROOT)
    if text.startswith(root):
        text = text[len(root) + 1 :]
    return f"`{text}`"
