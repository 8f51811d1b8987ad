"""The case category tree and the time limits (限时办结) per category and priority, loaded
from a JSON file (config/case_categories.json)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hub.errors import HubError

Priority = Literal["normal", "urgent", "emergency"]
PRIORITIES: tuple[Priority, ...] = ("normal", "urgent", "emergency")
CODE_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$"


class Category(BaseModel):
    """A node of the category tree (two levels: a root and its sub-categories)."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=CODE_PATTERN, max_length=64)
    name: str = Field(min_length=1, max_length=50)
    name_en: str = Field("", max_length=80)
    children: list[Category] = Field(default_factory=list)


class Limits(BaseModel):
    """Hours allowed from registration to closure, per priority."""

    model_config = ConfigDict(extra="forbid")

    normal: float = Field(gt=0)
    urgent: float = Field(gt=0)
    emergency: float = Field(gt=0)


class CategoryFile(BaseModel):
    """The file's shape."""

    model_config = ConfigDict(extra="forbid")

    time_limits_hours: dict[str, Limits]
    categories: list[Category] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> CategoryFile:
        if "default" not in self.time_limits_hours:
            raise ValueError("time_limits_hours needs a 'default' entry")
        roots = {c.code for c in self.categories}
        for code in self.time_limits_hours:
            if code != "default" and code not in roots:
                raise ValueError(f"time limits for unknown root category {code!r}")
        for root in self.categories:
            if "." in root.code:
                raise ValueError(f"root category {root.code!r} must not contain a dot")
            for child in root.children:
                if not child.code.startswith(root.code + ".") or child.children:
                    raise ValueError(f"sub-category {child.code!r} must be {root.code}.<name>")
        return self


class Categories:
    """Lookups over the loaded tree."""

    def __init__(self, spec: CategoryFile) -> None:
        self.spec = spec
        self.root_of: dict[str, str] = {}
        self.names: dict[str, str] = {}
        for root in spec.categories:
            self.root_of[root.code] = root.code
            self.names[root.code] = root.name
            for child in root.children:
                self.root_of[child.code] = root.code
                self.names[child.code] = child.name

    @classmethod
    def load(cls, path: Path) -> Categories:
        """Read and validate the file; a broken file stops the hub with a clear message."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return cls(CategoryFile.model_validate(raw))
        except (OSError, ValueError, ValidationError) as err:
            raise HubError("config.invalid", f"case categories file {path}: {err}", 500) from err

    def time_limit(self, category: str, priority: str) -> timedelta:
        """How long a case of ``category`` and ``priority`` may take to close."""
        limits = self.spec.time_limits_hours
        root = self.root_of.get(category, "default")
        chosen = limits.get(root, limits["default"])
        hours: float = getattr(chosen, priority)
        return timedelta(hours=hours)
