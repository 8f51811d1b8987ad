"""Our cameras as the upper platform sees them: a 20-digit channel id and a catalog item per
camera, the CivilCode from the camera's org, and the reverse lookup channel id → camera."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.cameras.devices import parse_channel_url
from hub.cameras.registry import CameraRecord
from hub.config import CascadeSettings
from hub.db.models import Camera
from protocols.gb28181.manscdp import CatalogItem

CAMERA_TYPE = "131"
"""GB/T 28181 type code of a camera (digits 11-13 of an id)."""
SERIAL_DIGITS = 7
MANUFACTURER = "GridHub"
MODEL = "cascade"
CHANNEL_ID_LENGTH = 20


def derived_channel_id(domain: str, camera_id: str, taken: set[str]) -> str:
    """``<domain>131<7 digits>``: the digits come from a hash of the camera id (stable across
    restarts and orderings); on a clash the next free number is used."""
    digest = int.from_bytes(hashlib.sha256(camera_id.encode()).digest()[:8], "big")
    serial = digest % 10**SERIAL_DIGITS
    while True:
        candidate = f"{domain}{CAMERA_TYPE}{serial:0{SERIAL_DIGITS}d}"
        if candidate not in taken:
            return candidate
        serial = (serial + 1) % 10**SERIAL_DIGITS


@dataclass(frozen=True, slots=True)
class SharedCamera:
    """One camera shared upward."""

    channel_id: str
    record: CameraRecord


class CameraDirectory:
    """Reads the camera table and maps it to channel ids (fresh on every lookup: cameras
    come and go through the REST API and GB/T 28181 catalogs)."""

    def __init__(
        self, settings: CascadeSettings, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.domain = settings.sip_id[:10]

    async def cameras(self) -> list[SharedCamera]:
        """Every camera with its channel id, in a stable order."""
        async with self.sessions() as session:
            rows = (await session.scalars(select(Camera).order_by(Camera.id))).all()
        records = [CameraRecord.of(row) for row in rows]
        fixed: dict[str, str] = {}
        for record in records:
            configured = self.settings.channel_ids.get(record.id)
            parts = parse_channel_url(record.source_url)
            if configured:
                fixed[record.id] = configured
            elif parts is not None and _is_gb_id(parts[1]):
                fixed[record.id] = parts[1]
        taken = set(fixed.values())
        shared: list[SharedCamera] = []
        for record in records:
            channel_id = fixed.get(record.id)
            if channel_id is None:
                channel_id = derived_channel_id(self.domain, record.id, taken)
                taken.add(channel_id)
            shared.append(SharedCamera(channel_id, record))
        return shared

    async def find(self, channel_id: str) -> SharedCamera | None:
        """The camera shown upward as ``channel_id``, or None."""
        for camera in await self.cameras():
            if camera.channel_id == channel_id:
                return camera
        return None

    def civil_code(self, org: str) -> str:
        """The CivilCode of an org: the longest configured prefix, else the default."""
        best = ""
        for prefix in self.settings.civil_codes:
            if (org == prefix or org.startswith(prefix + ".")) and len(prefix) > len(best):
                best = prefix
        if best:
            return self.settings.civil_codes[best]
        return self.settings.default_civil_code or self.domain[:6]

    def item(self, camera: SharedCamera) -> CatalogItem:
        """The catalog item of a camera."""
        record = camera.record
        return CatalogItem(
            device_id=camera.channel_id,
            name=record.name,
            manufacturer=MANUFACTURER,
            model=MODEL,
            owner=record.org,
            civil_code=self.civil_code(record.org),
            address=record.org,
            parental=False,
            parent_id=self.settings.sip_id,
            status="OFF" if record.status == "offline" else "ON",
            longitude=record.lon,
            latitude=record.lat,
            ptz_type=1 if record.ptz else 3,
            register_way="1",
            secrecy="0",
        )


def _is_gb_id(value: str) -> bool:
    return len(value) == CHANNEL_ID_LENGTH and value.isdigit()
