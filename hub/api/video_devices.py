"""Video devices over REST: the GB/T 28181 devices, NVRs and lower platforms registered to
the hub, with online state, last keepalive, transport and their channels (each a camera,
with its codec once live media was seen); an admin or dispatcher may ask for a catalog sync.

Dispatchers, leaders and admins see the devices whose org lies in their subtree, and the
devices of the cameras they may see (with only those channels)."""

from __future__ import annotations

from datetime import datetime
from typing import TypeVarTuple

from aiohttp import web
from pydantic import BaseModel, Field
from sqlalchemy import Select, select

from hub.api.auth import require_identity
from hub.api.directory_http import json_reply
from hub.api.errors import Handler
from hub.api.operations import Operation, Reply, RouteKey
from hub.auth.tokens import Identity
from hub.db.models import Camera, VideoChannel, VideoDevice
from hub.db.paths import in_subtree
from hub.errors import HubError
from hub.state import HUB, Hub
from protocols.envelope import org_contains

DEVICES = "/api/v1/video-devices"
DEVICE = "/api/v1/video-devices/{id}"
CATALOG = "/api/v1/video-devices/{id}/catalog"
READ_ROLES = ("admin", "dispatcher", "leader")
SYNC_ROLES = ("admin", "dispatcher")
MAX_ID = 64
_Columns = TypeVarTuple("_Columns")


class DeviceOut(BaseModel):
    """A registered video device or lower platform."""

    id: str = Field(description="Its SIP id (20 digits).")
    name: str | None
    manufacturer: str | None
    model: str | None
    firmware: str | None
    org: str
    status: str = Field(description="online or offline (missed keepalives, expired, left).")
    registered: bool = Field(description="Registered to this hub process now.")
    transport: str = Field(description="udp or tcp: how it reaches the SIP server.")
    address: str = Field(description="host:port it was last heard from.")
    charset: str
    registered_at: datetime | None
    expires_at: datetime | None
    last_keepalive_at: datetime | None
    channel_count: int
    catalog_synced_at: datetime | None

    @classmethod
    def of(cls, row: VideoDevice, registered: bool) -> DeviceOut:
        """The API form of a row."""
        return cls(
            id=row.id, name=row.name, manufacturer=row.manufacturer, model=row.model,
            firmware=row.firmware, org=row.org, status=row.status, registered=registered,
            transport=row.transport, address=f"{row.host}:{row.port}", charset=row.charset,
            registered_at=row.registered_at, expires_at=row.expires_at,
            last_keepalive_at=row.last_keepalive_at, channel_count=row.channel_count,
            catalog_synced_at=row.catalog_synced_at,
        )  # fmt: skip


class ChannelOut(BaseModel):
    """A channel of a device: a camera."""

    channel_id: str
    camera_id: str = Field(description="The camera (`/api/v1/cameras/{camera_id}`).")
    name: str
    civil_code: str | None
    address: str | None
    catalog_status: str = Field(description="What the catalog says (ON / OFF).")
    camera_status: str = Field(description="The camera's status: unknown, online, offline.")
    ptz_type: int | None = Field(description="1 dome, 2 half-dome, 3 fixed, 4 remote.")
    codec: str | None = Field(description="h264 / h265 once live media was seen.")


class DeviceList(BaseModel):
    """Devices, by id."""

    items: list[DeviceOut]


class DeviceDetail(DeviceOut):
    """A device with its channels."""

    channels: list[ChannelOut]


class CatalogResult(BaseModel):
    """What a catalog sync imported."""

    added: int
    updated: int
    unplaced: int = Field(description="Channels whose org is unknown, placed at the device's.")


def _seen_by(query: Select[*_Columns], identity: Identity) -> Select[*_Columns]:
    """``query`` over channels, narrowed to those whose camera lies in the caller's subtree
    (a device is visible to whoever may see one of its channels)."""
    return query.join(Camera, Camera.id == VideoChannel.camera_id).where(
        in_subtree(Camera.org, identity.org)
    )


def _registered(hub: Hub, device_id: str) -> bool:
    return hub.gb28181 is not None and hub.gb28181.devices.get(device_id) is not None


async def list_devices(request: web.Request) -> web.Response:
    """Devices in the caller's subtree."""
    identity = require_identity(request, *READ_ROLES)
    hub = request.app[HUB]
    async with hub.sessions() as session:
        rows = (await session.scalars(select(VideoDevice).order_by(VideoDevice.id))).all()
        query = _seen_by(select(VideoChannel.device_id), identity).distinct()
        with_channels = set((await session.scalars(query)).all())
    items = [
        DeviceOut.of(r, _registered(hub, r.id))
        for r in rows
        if org_contains(identity.org, r.org) or r.id in with_channels
    ]
    return json_reply(DeviceList(items=items))


async def _device(request: web.Request, *roles: str) -> tuple[VideoDevice, Identity]:
    identity = require_identity(request, *roles)
    device_id = request.match_info["id"]
    row = None
    if 0 < len(device_id) <= MAX_ID:
        async with request.app[HUB].sessions() as session:
            row = await session.get(VideoDevice, device_id)
            if row is not None and not org_contains(identity.org, row.org):
                query = _seen_by(select(VideoChannel.channel_id), identity)
                seen = await session.scalar(query.where(VideoChannel.device_id == row.id).limit(1))
                row = row if seen is not None else None
    if row is None:
        raise HubError("video_device.not_found", f"no video device {device_id[:64]} for you", 404)
    return row, identity


async def get_device(request: web.Request) -> web.Response:
    """A device and its channels (those in the caller's subtree)."""
    row, identity = await _device(request, *READ_ROLES)
    hub = request.app[HUB]
    async with hub.sessions() as session:
        pairs = (
            await session.execute(
                _seen_by(select(VideoChannel, Camera.status), identity)
                .where(VideoChannel.device_id == row.id)
                .order_by(VideoChannel.channel_id)
            )
        ).all()
    channels = [
        ChannelOut(
            channel_id=c.channel_id,
            camera_id=c.camera_id,
            name=c.name,
            civil_code=c.civil_code,
            address=c.address,
            catalog_status=c.status,
            camera_status=status,
            ptz_type=c.ptz_type,
            codec=c.codec,
        )
        for c, status in pairs
    ]
    out = DeviceOut.of(row, _registered(hub, row.id))
    return json_reply(DeviceDetail(**out.model_dump(), channels=channels))


async def post_catalog(request: web.Request) -> web.Response:
    """Sync a device's catalog now."""
    row, _ = await _device(request, *SYNC_ROLES)
    adapter = request.app[HUB].gb28181
    live = None if adapter is None else adapter.devices.get(row.id)
    if adapter is None or live is None:
        raise HubError("video_device.offline", f"device {row.id} is not registered now", 409)
    result = await adapter.catalog.sync(row.id)
    if result is None:
        if not live.online:
            raise HubError("video_device.offline", f"device {row.id} is silent (no keepalives); "
                           "its catalog is asked for when it is heard again", 409)  # fmt: skip
        raise HubError("video_device.no_answer", f"device {row.id} sent no catalog", 504)
    return json_reply(CatalogResult(added=result.added, updated=result.updated,
                                    unplaced=result.unplaced))  # fmt: skip


_AUTH = ("auth.required", "auth.invalid_token", "auth.token_expired", "auth.forbidden")
_IDS = {"id": "Device SIP id."}
_WHO = (
    " Dispatchers, leaders and admins: the devices in the caller's subtree and those with a"
    " channel there (listing only those channels); others do not exist for them."
)

ROUTES: list[tuple[str, str, Handler, Operation]] = [
    ("GET", DEVICES, list_devices, Operation(
        "List video devices", "cameras",
        "GB/T 28181 devices, NVRs and lower platforms registered to the hub (`HUB_GB28181__…`)"
        ", with online state, last keepalive and transport." + _WHO, "bearer",
        replies={200: Reply("The devices, by id.", DeviceList)}, errors=_AUTH,
    )),
    ("GET", DEVICE, get_device, Operation(
        "Get a video device and its channels", "cameras",
        "Each channel is a camera (`gb28181://<device>/<channel>`) in the org its CivilCode "
        "maps to; `codec` is known once live media arrived." + _WHO, "bearer",
        path_params=_IDS, replies={200: Reply("The device.", DeviceDetail)},
        errors=(*_AUTH, "video_device.not_found"),
    )),
    ("POST", CATALOG, post_catalog, Operation(
        "Sync a video device's catalog now", "cameras",
        "Sends a Catalog query and imports the answer (however many messages it takes) as "
        "cameras. Admins and dispatchers.", "bearer", path_params=_IDS,
        replies={200: Reply("What was imported.", CatalogResult)},
        errors=(*_AUTH, "video_device.not_found", "video_device.offline",
                "video_device.no_answer"),
    )),
]  # fmt: skip

OPERATIONS: dict[RouteKey, Operation] = {(m, p): op for m, p, _, op in ROUTES}


def add_routes(app: web.Application) -> None:
    """Register the video device routes."""
    for method, path, handler, _ in ROUTES:
        app.router.add_route(method, path, handler)
