"""``var/runtime.json``: where a running ``hub serve`` really listens, for tools on the same
machine. The embedded MQTT broker moves to a free port when 1883 is taken, so ``hub demo``
cannot know the broker from the configuration alone.

The file holds ``{"pid": ..., "url": "http://127.0.0.1:8000", "mqtt": "mqtt://..."}``;
``hub serve`` writes it once started with demo data and the embedded broker, and removes it
when it stops. A file left by a killed hub is ignored (its pid is gone).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from hub.config import PROJECT_ROOT

RUNTIME_FILE = PROJECT_ROOT / "var" / "runtime.json"


def write_runtime(url: str, mqtt_url: str | None, path: Path = RUNTIME_FILE) -> None:
    """Record this process's endpoints (atomically: readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps({"pid": os.getpid(), "url": url, "mqtt": mqtt_url}) + "\n")
    tmp.replace(path)


def remove_runtime(path: Path = RUNTIME_FILE) -> None:
    """Remove the file if this process wrote it."""
    if (read_runtime(path) or {}).get("pid") == os.getpid():
        with contextlib.suppress(OSError):
            path.unlink()


def read_runtime(path: Path = RUNTIME_FILE) -> dict[str, Any] | None:
    """The recorded endpoints, or None if there is no file or it is unreadable."""
    try:
        data: Any = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def runtime_broker(url: str, path: Path = RUNTIME_FILE) -> str | None:
    """The broker of the running hub serving ``url``, if it recorded one and still runs."""
    data = read_runtime(path)
    if data is None or str(data.get("url", "")).rstrip("/") != url.rstrip("/"):
        return None
    pid = data.get("pid")
    if not isinstance(pid, int) or not _alive(pid):
        return None
    mqtt = data.get("mqtt")
    return mqtt if isinstance(mqtt, str) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
