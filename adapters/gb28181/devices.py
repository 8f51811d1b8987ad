"""Devices as the running adapter knows them: where to reach each (refreshed from every
request it sends, so NAT rebinding is followed), its charset, when it must be heard from
again, and the counters /metrics shows."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from hub.metric_families import count
from streams.sip_transport import Peer


@dataclass(slots=True)
class LiveDevice:
    """A registered device or lower platform."""

    id: str
    org: str
    peer: Peer
    charset: str
    expires_at: float
    """Monotonic time its registration runs out."""
    last_seen: float
    online: bool = True
    keepalive_written: float = 0.0
    """Monotonic time its last keepalive was stored (writes are throttled)."""
    catalog_due: bool = False
    """A catalog sync found it offline: ask again as soon as it is heard from."""

    def heard(self, peer: Peer) -> None:
        """It sent something: remember when and from where (NAT may have moved it)."""
        self.last_seen = time.monotonic()
        self.peer = peer


@dataclass(slots=True)
class Gb28181Counters:
    """What the adapter did (plain integers, read at scrape time)."""

    registrations: dict[str, int] = field(default_factory=dict)
    """By outcome: ok, unregistered, challenged, forbidden, stale, bad_request."""
    keepalives: int = 0
    messages: dict[str, int] = field(default_factory=dict)
    """MANSCDP messages received by CmdType."""
    rejected: dict[str, int] = field(default_factory=dict)
    """Refused traffic by reason: malformed_body, unknown_device, …"""
    invites: dict[str, int] = field(default_factory=dict)
    """INVITEs by outcome: ok, refused, timeout."""
    catalog_syncs: dict[str, int] = field(default_factory=dict)
    """By outcome: ok, partial, timeout, refused, offline (skipped: the device was silent)."""
    alarms: int = 0
    ptz_commands: int = 0
    supervision_stalls: int = 0
    """Sweeps of device supervision that found the hub had not run for a while (deadlines
    moved by the stall rather than devices marked offline)."""

    bump = staticmethod(count)


class DeviceTable:
    """The registered devices of this hub process."""

    def __init__(self) -> None:
        self._devices: dict[str, LiveDevice] = {}

    def get(self, device_id: str) -> LiveDevice | None:
        """The device if it is registered."""
        return self._devices.get(device_id)

    def put(self, device: LiveDevice) -> None:
        """Add or replace a device."""
        self._devices[device.id] = device

    def remove(self, device_id: str) -> LiveDevice | None:
        """Forget a device (unregistered)."""
        return self._devices.pop(device_id, None)

    def all(self) -> list[LiveDevice]:
        """Every registered device."""
        return list(self._devices.values())

    @property
    def online(self) -> int:
        """How many are online."""
        return sum(1 for d in self._devices.values() if d.online)

    def __len__(self) -> int:
        return len(self._devices)
