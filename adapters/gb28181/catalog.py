"""Catalog sync: ask a device for its catalog (on registration and on a schedule), gather
the answer however many MESSAGEs it is split into (``SumNum``), and import the channels as
cameras in their orgs."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import structlog

from hub.cameras.devices import CatalogImport, ChannelSpec
from protocols.gb28181.manscdp import (
    CatalogAssembler,
    CatalogItem,
    ManscdpError,
    ManscdpMessage,
)
from protocols.gb28181.manscdp_build import build_query

if TYPE_CHECKING:
    from adapters.gb28181.adapter import Gb28181Adapter
    from adapters.gb28181.devices import LiveDevice

log = structlog.get_logger(__name__)

FIRST_SYNC_DELAY = 0.2
"""Seconds between a registration's answer and the catalog query (devices ignore queries
that arrive before they processed the 200)."""


class CatalogSync:
    """Catalog queries and their answers, per device."""

    def __init__(self, adapter: Gb28181Adapter) -> None:
        self.adapter = adapter
        self._loops: dict[str, asyncio.Task[None]] = {}
        self._pending: dict[tuple[str, int], tuple[CatalogAssembler, asyncio.Future[None]]] = {}

    def schedule(self, device: LiveDevice, at_once: bool) -> None:
        """(Re)start the device's sync loop: now, then every ``catalog_interval``."""
        self.cancel(device.id)
        self._loops[device.id] = self.adapter.tasks.spawn(
            self._loop(device.id, FIRST_SYNC_DELAY if at_once else None),
            name=f"gb28181 catalog {device.id}",
        )

    def cancel(self, device_id: str) -> None:
        """Stop the device's sync loop (unregistered or expired)."""
        task = self._loops.pop(device_id, None)
        if task is not None:
            task.cancel()

    async def _loop(self, device_id: str, first: float | None) -> None:
        interval = self.adapter.settings.catalog_interval
        await asyncio.sleep(interval if first is None else first)
        while True:
            await self.sync(device_id)
            await asyncio.sleep(interval)

    async def sync(self, device_id: str) -> CatalogImport | None:
        """Query one device's catalog and import it; None when it failed (logged)."""
        adapter = self.adapter
        device = adapter.devices.get(device_id)
        if device is None:
            return None
        bump = adapter.counters.bump
        if not device.online:  # silent past the supervision: the query would go unanswered
            device.catalog_due = True
            bump(adapter.counters.catalog_syncs, "offline")
            return None
        sn = adapter.requests.sn()
        assembler = CatalogAssembler(device_id, sn, adapter.settings.max_channels_per_device)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending[(device_id, sn)] = (assembler, done)
        body = build_query("Catalog", sn, device_id, device.charset)
        request = adapter.requests.message(
            device_id, device.peer.host, device.peer.port, device.peer.transport, body
        )
        items: list[CatalogItem] | None = None
        try:
            response = await asyncio.wait_for(
                adapter.transport.request(request, device.peer), adapter.settings.request_timeout
            )
            if response.status >= 300:
                bump(adapter.counters.catalog_syncs, "refused")
                log.warning("catalog query refused", device_id=device_id, status=response.status)
                return None
            await asyncio.wait_for(done, adapter.settings.catalog_timeout)
            items = assembler.items()
        except (TimeoutError, ConnectionError):
            items = assembler.items()
            if not items:
                bump(adapter.counters.catalog_syncs, "timeout")
                log.warning("no catalog from the device", device_id=device_id)
                return None
            bump(adapter.counters.catalog_syncs, "partial")
            log.warning("catalog incomplete: importing what arrived", device_id=device_id,
                        received=len(items), missing=assembler.missing)  # fmt: skip
        finally:
            self._pending.pop((device_id, sn), None)
        result = await adapter.store.import_catalog(
            device_id, [self._channel(device_id, i) for i in items if _is_channel(i)],
            device.org,
        )  # fmt: skip
        bump(adapter.counters.catalog_syncs, "ok")
        adapter.tasks.spawn(self._ask_device_info(device), name="gb28181 device info")
        return result

    async def _ask_device_info(self, device: LiveDevice) -> None:
        """Ask for the device's name, maker, model and firmware (the answer comes as a
        MESSAGE of its own and is stored when it does)."""
        adapter = self.adapter
        body = build_query("DeviceInfo", adapter.requests.sn(), device.id, device.charset)
        request = adapter.requests.message(
            device.id, device.peer.host, device.peer.port, device.peer.transport, body
        )
        try:
            await asyncio.wait_for(
                adapter.transport.request(request, device.peer), adapter.settings.request_timeout
            )
        except (TimeoutError, ConnectionError):
            log.info("no answer to the DeviceInfo query", device_id=device.id)

    def received(self, device: LiveDevice, message: ManscdpMessage) -> None:
        """One MESSAGE of a catalog answer."""
        entry = self._pending.get((device.id, message.sn))
        if entry is None:
            self.adapter.counters.bump(self.adapter.counters.rejected, "unexpected_catalog")
            return
        assembler, done = entry
        try:
            complete = assembler.add(message)
        except ManscdpError as err:
            self.adapter.counters.bump(self.adapter.counters.rejected, "malformed_body")
            log.info("bad catalog message", device_id=device.id, error=str(err))
            return
        if complete is not None and not done.done():
            done.set_result(None)

    def _channel(self, device_id: str, item: CatalogItem) -> ChannelSpec:
        org = self.adapter.org_for(device_id, item.civil_code or None)
        lat, lon = item.latitude, item.longitude
        if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
            lat = lon = None
        elif lat == 0 and lon == 0:
            lat = lon = None  # "no position" as many devices write it
        return ChannelSpec(
            channel_id=item.device_id, name=item.name or item.device_id, org=org,
            civil_code=item.civil_code or None, parent_id=item.parent_id or None,
            address=item.address or None, status=(item.status or "ON").upper()[:8],
            ptz_type=item.ptz_type, lat=lat, lon=lon,
        )  # fmt: skip


VIDEO_TYPES = frozenset({"131", "132"})
"""Type codes (digits 11–13 of a 20-digit id) of cameras (131) and IP cameras (132); other
catalog entries are devices, business groups or virtual organisations, not channels."""


def _is_channel(item: CatalogItem) -> bool:
    """Whether a catalog entry is a video channel (20-digit ids carry their type)."""
    code = item.device_id
    if len(code) == 20 and code.isdigit():
        return code[10:13] in VIDEO_TYPES
    return not item.parental
