"""Video devices (GB/T 28181 devices, NVRs, lower platforms) and their channels as the hub
stores them: registration and keepalive state, and catalogs imported as cameras. The
adapter (adapters/gb28181) decides; this store persists and raises the camera events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.cameras.registry import CameraRegistry
from hub.db.models import Camera, OrgNode, VideoChannel, VideoDevice, utcnow

log = structlog.get_logger(__name__)

GB28181_SCHEME = "gb28181"
IN_CHUNK = 500
"""Ids per ``IN (…)`` query (SQLite allows 999 bound parameters)."""
FLUSH_EVERY = 50
"""Channels an import builds before it flushes them: building and flushing a large catalog's
rows in one go would hold the event loop for hundreds of milliseconds."""
NAME_MAX = 100
ADDRESS_MAX = 200


def channel_url(device_id: str, channel_id: str) -> str:
    """The source URL of a channel's camera."""
    return f"{GB28181_SCHEME}://{device_id}/{channel_id}"


def parse_channel_url(url: str) -> tuple[str, str] | None:
    """(device id, channel id) of a ``gb28181://`` source URL, else None."""
    prefix = f"{GB28181_SCHEME}://"
    if not url.startswith(prefix):
        return None
    device, _, channel = url[len(prefix) :].partition("/")
    return (device, channel) if device and channel and "/" not in channel else None


def channel_camera_id(device_id: str, channel_id: str) -> str:
    """The camera id of a channel: unique even when two platforms cascade one channel."""
    return f"{device_id}_{channel_id}"


@dataclass(frozen=True, slots=True)
class DeviceSeen:
    """A device that just registered."""

    id: str
    org: str
    transport: str
    host: str
    port: int
    charset: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """One catalog entry to import."""

    channel_id: str
    name: str
    org: str
    civil_code: str | None
    parent_id: str | None
    address: str | None
    status: str
    ptz_type: int | None
    lat: float | None
    lon: float | None


@dataclass(frozen=True, slots=True)
class CatalogImport:
    """What a catalog import changed."""

    added: int
    updated: int
    unplaced: int
    """Channels whose org does not exist: placed at the device's org instead."""


class VideoDeviceStore:
    """Persistence of video devices and their channels."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], registry: CameraRegistry
    ) -> None:
        self.sessions = sessions
        self.registry = registry

    async def registered(self, seen: DeviceSeen) -> bool:
        """Store a registration (online now); True if the device was offline before."""
        now = utcnow()
        async with self.sessions() as session, session.begin():
            row = await session.get(VideoDevice, seen.id, with_for_update=True)
            if row is None:
                row = VideoDevice(id=seen.id, status="offline", channel_count=0)
                session.add(row)
            was_offline = row.status != "online"
            row.org, row.transport, row.host, row.port = (
                seen.org, seen.transport, seen.host, seen.port,
            )  # fmt: skip
            row.charset, row.expires_at, row.registered_at = seen.charset, seen.expires_at, now
            row.last_keepalive_at = now
            if was_offline:
                row.status, row.status_changed_at = "online", now
        return was_offline

    async def keepalive(self, device_id: str, at: datetime, host: str, port: int) -> None:
        """Store the time of a keepalive and the address it came from (NAT rebinding)."""
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(VideoDevice)
                .where(VideoDevice.id == device_id)
                .values(last_keepalive_at=at, host=host, port=port)
            )

    async def set_status(self, device_id: str, online: bool, reason: str) -> None:
        """Mark the device and its channels' cameras online (channels the catalog lists as
        ON) or offline; each camera's change raises its camera.online/offline event."""
        status = "online" if online else "offline"
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(VideoDevice)
                .where(VideoDevice.id == device_id, VideoDevice.status != status)
                .values(status=status, status_changed_at=utcnow())
            )
            channels = (
                await session.scalars(
                    select(VideoChannel).where(VideoChannel.device_id == device_id)
                )
            ).all()
        for channel in channels:
            if online and channel.status != "ON":
                continue
            await self.registry.set_status(channel.camera_id, online, reason)

    async def describe(
        self, device_id: str, name: str | None, manufacturer: str | None, model: str | None,
        firmware: str | None,
    ) -> None:  # fmt: skip
        """Store what a DeviceInfo answer said."""
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(VideoDevice)
                .where(VideoDevice.id == device_id)
                .values(
                    name=_cut(name, 100),
                    manufacturer=_cut(manufacturer, 64),
                    model=_cut(model, 64),
                    firmware=_cut(firmware, 64),
                )
            )

    async def import_catalog(
        self, device_id: str, channels: list[ChannelSpec], fallback_org: str
    ) -> CatalogImport:
        """Upsert channels and their cameras (one transaction). Channels whose org is not
        in the org tree go to ``fallback_org``."""
        added = updated = unplaced = 0
        now = utcnow()
        async with self.sessions() as session, session.begin():
            orgs = set((await session.scalars(select(OrgNode.path))).all())
            known: dict[str, VideoChannel] = {}
            cameras: dict[str, Camera] = {}
            ids = [channel_camera_id(device_id, c.channel_id) for c in channels]
            for start in range(0, len(channels), IN_CHUNK):
                part = [c.channel_id for c in channels[start : start + IN_CHUNK]]
                rows = await session.scalars(
                    select(VideoChannel).where(
                        VideoChannel.device_id == device_id, VideoChannel.channel_id.in_(part)
                    )
                )
                known.update({r.channel_id: r for r in rows})
                found = await session.scalars(
                    select(Camera).where(Camera.id.in_(ids[start : start + IN_CHUNK]))
                )
                cameras.update({c.id: c for c in found})
            for n, (spec, camera_id) in enumerate(zip(channels, ids, strict=True)):
                if n and n % FLUSH_EVERY == 0:
                    await session.flush()  # the loop serves others between parts
                org = spec.org
                if org not in orgs:
                    org, unplaced = fallback_org, unplaced + 1
                name = _cut(spec.name, NAME_MAX) or spec.channel_id
                row = known.get(spec.channel_id)
                if row is None:
                    row = VideoChannel(device_id=device_id, channel_id=spec.channel_id)
                    session.add(row)
                row.camera_id, row.name, row.civil_code = camera_id, name, spec.civil_code
                row.parent_id, row.address = spec.parent_id, _cut(spec.address, ADDRESS_MAX)
                row.status, row.ptz_type, row.updated_at = spec.status, spec.ptz_type, now
                camera = cameras.get(camera_id)
                if camera is None:
                    added += 1
                    camera = Camera(
                        id=camera_id, source_url=channel_url(device_id, spec.channel_id),
                        tags=["gb28181"], status="unknown",
                    )  # fmt: skip
                    session.add(camera)
                elif (camera.name, camera.org) != (name, org):
                    updated += 1
                camera.name, camera.org, camera.lat, camera.lon = name, org, spec.lat, spec.lon
                camera.ptz = spec.ptz_type in PTZ_TYPES
            await session.execute(
                update(VideoDevice)
                .where(VideoDevice.id == device_id)
                .values(channel_count=len(known) + added, catalog_synced_at=now)
            )
        self.registry.relay.notify()
        log.info("catalog imported", device_id=device_id, channels=len(channels), added=added,
                 updated=updated, unplaced=unplaced)  # fmt: skip
        return CatalogImport(added, updated, unplaced)

    async def set_codec(self, camera_id: str, codec: str) -> None:
        """Remember the codec a channel's live media came in."""
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(VideoChannel)
                .where(
                    VideoChannel.camera_id == camera_id, VideoChannel.codec.is_distinct_from(codec)
                )
                .values(codec=codec)
            )

    async def device(self, device_id: str) -> tuple[VideoDevice, list[VideoChannel]] | None:
        """A device and its channels (by channel id), or None."""
        async with self.sessions() as session:
            row = await session.get(VideoDevice, device_id)
            if row is None:
                return None
            channels = await session.scalars(
                select(VideoChannel)
                .where(VideoChannel.device_id == device_id)
                .order_by(VideoChannel.channel_id)
            )
            return row, list(channels.all())

    async def online_devices(self) -> list[VideoDevice]:
        """Devices stored as online (after a restart: to expire those that never return)."""
        async with self.sessions() as session:
            query = select(VideoDevice).where(VideoDevice.status == "online")
            return list((await session.scalars(query)).all())


PTZ_TYPES = frozenset({1, 2})
"""Catalog PTZType values of steerable cameras: 1 dome (球机), 2 half-dome (半球)."""


def _cut(value: str | None, size: int) -> str | None:
    return None if value is None else value.strip()[:size] or None
