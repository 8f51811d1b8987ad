"""What a demo run is told: where the hub and its broker are, how many phones, for how long,
and how often each kind of thing happens."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hub.config import PROJECT_ROOT


@dataclass(frozen=True, slots=True)
class DemoTimings:
    """How often things happen (seconds). The defaults make a lively console at a pace a
    newcomer can follow; tests shorten them."""

    ping_interval: float = 5.0
    """Between two location pings of one phone."""
    case_interval: float = 20.0
    """Between two case ticks (one new report, earlier cases one step on)."""
    notice_interval: float = 90.0
    """Between two notices."""
    walk_s: float | None = None
    """Seconds of walking one ping stands for (default: the ping interval); tests raise it
    so short runs cover ground."""
    wander_interval: float = 75.0
    """Between two phones walking out of their grid (and back)."""
    wander_fixes: int = 4
    """Fixes a wandering phone sends from outside before it walks back."""
    wander_beyond_m: float = 120.0
    """How far past the grid boundary a wandering phone goes."""
    silence_interval: float = 240.0
    """From one phone's coming back to the next phone's going silent (one at a time)."""
    silence_s: float | None = None
    """How long a phone stays silent; default: the hub's offline_after plus a margin, so the
    console shows the offline alert and then the worker coming back."""
    status_interval: float = 30.0
    """Between two summary lines of the phones."""
    advance_probability: float = 0.6
    """Chance that an earlier case moves one step on a case tick."""
    first_case_delay: float = 3.0
    """Seconds after the start before the first case (phones show up first)."""
    camera_clip_s: float = 60.0
    """Length of the demo camera's clip (made once; the camera replays it)."""


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """One demo run."""

    url: str
    """The hub's base URL (http://host:port)."""
    mqtt_url: str | None = None
    """The broker the hub listens to (mqtt:// or mqtts://)."""
    topic_prefix: str = ""
    """The hub's mqtt.topic_prefix."""
    workers: int | None = None
    """Phones to simulate (None: every demo grid worker with a grid polygon)."""
    duration: float | None = None
    """Seconds to run (None: until stopped)."""
    seed: int | None = None
    timings: DemoTimings = field(default_factory=DemoTimings)
    ready_timeout: float = 60.0
    """Seconds to wait for the hub's /readyz before giving up."""
    camera: bool = True
    """Run the demo camera (RTSP if GStreamer's server is installed, else a file source)."""
    media_dir: Path = PROJECT_ROOT / "var" / "demo"
    """Where the demo camera's clip is made and kept."""
