"""The application factory: builds the aiohttp app and runs the hub's lifecycle.

Start-up (cleanup_ctx): database → org tree and demo data → bus (retried until ready) →
gateway → outbox relay → adapters. Shutdown, each stage time-boxed: stop accepting and
close WebSockets with the reconnect advice (on_shutdown) → adapters in reverse order →
peer connections and media threads → relay and background tasks → bus → database engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.api import health, ingest
from hub.api.errors import error_middleware
from hub.auth.tokens import TokenVerifier
from hub.bus import Bus, BusUnavailable
from hub.bus.memory import MemoryBus
from hub.cameras.recordings import RecordingService
from hub.cameras.registry import CameraRecord, CameraRegistry
from hub.cameras.seed import seed_cameras
from hub.cases.categories import Categories
from hub.cases.deadlines import DeadlineSweeper
from hub.cases.intake import CaseIntake
from hub.cases.service import CaseService
from hub.cases.sms import CaseSms
from hub.config import Settings
from hub.consultations.contract import NoMedia
from hub.consultations.media import ConsultationMedia
from hub.consultations.rpc import ConsultationRpc
from hub.consultations.service import ConsultationService, bus_presence
from hub.db.engine import make_engine, make_sessionmaker
from hub.db.outbox import OutboxRelay
from hub.errors import HubError, NotReadyError
from hub.gateway.service import Gateway
from hub.locations.live import LivePositions
from hub.locations.registry import WorkerRegistry
from hub.locations.service import LocationService
from hub.metrics import HubMetrics
from hub.notices.rpc import NoticeRpc
from hub.notices.service import NoticeService
from hub.notices.sms_fallback import NoticeSmsFallback
from hub.org.seed import seed
from hub.publisher import Publisher
from hub.sms.service import SmsService
from hub.state import HUB, SETTINGS, Adapter, Hub
from hub.tasks import TaskRegistry
from protocols.geo import GridIndex, HysteresisConfig, LatLon
from streams.manager import MediaConfig, StreamManager
from streams.recorder import RecordConfig
from streams.room import RoomConfig
from streams.source import PullConfig
from streams.transcode import TranscodeConfig

if TYPE_CHECKING:
    from adapters.onvif import PtzPool

log = structlog.get_logger(__name__)

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"
BUS_START_MAX_DELAY = 5.0
PRUNE_INTERVAL = 300.0
ADAPTER_RETRY_MIN_DELAY = 0.5
ADAPTER_RETRY_MAX_DELAY = 30.0


def create_app(settings: Settings) -> web.Application:
    """Build the app; services start when the app starts (``cleanup_ctx``)."""
    app = web.Application(
        middlewares=[error_middleware], client_max_size=settings.ingest.max_body_bytes
    )
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_hub_context)
    app.on_shutdown.append(_close_websockets)
    app.router.add_get("/connection/websocket", _websocket)
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/metrics", health.metrics)
    app.router.add_post("/api/v1/events", ingest.post_event)
    from hub.api import cameras, case_stats, cases, directory, docs, notices, workers

    directory.add_routes(app)
    notices.add_routes(app)
    case_stats.add_routes(app)  # before cases: /api/v1/cases/{id} would match "stats"
    cases.add_routes(app)
    from adapters.sms import callbacks as sms_callbacks

    sms_callbacks.add_routes(app)
    from adapters.citymgmt import http as citymgmt_http

    citymgmt_http.add_routes(app)
    workers.add_routes(app)
    cameras.add_routes(app)
    from hub.api import camera_media

    camera_media.add_routes(app)
    from hub.api import camera_recordings

    camera_recordings.add_routes(app)
    from hub.api import camera_ptz

    camera_ptz.add_routes(app)
    from hub.api import consultations

    consultations.add_routes(app)
    from hub.api import video_devices, videonet

    video_devices.add_routes(app)
    videonet.add_routes(app)
    docs.add_routes(app)
    if WEB_ROOT.is_dir():
        app.router.add_get("/", _index)
        app.router.add_static("/static/", WEB_ROOT, show_index=False)
    return app


def make_bus(settings: Settings) -> Bus:
    """The configured bus backend: Redis when ``redis_url`` is set, else in-process."""
    node = settings.node_name or f"{socket.gethostname()}:{os.getpid()}"
    bus: Bus
    if settings.redis_url:
        from hub.bus.redis import RedisBus

        bus = RedisBus(settings.redis_url, settings.bus, node=node)
    else:
        bus = MemoryBus(settings.bus)
    bus.set_presence_ttl(settings.gateway.presence_ttl)
    return bus


async def _start_bus(bus: Bus) -> None:
    delay = 0.2
    while True:
        try:
            await bus.start()
            return
        except BusUnavailable as err:
            log.warning("bus not reachable yet, retrying", bus=bus.name, error=str(err))
            await asyncio.sleep(delay * (0.5 + random.random() / 2))
            delay = min(delay * 2, BUS_START_MAX_DELAY)


async def _hub_context(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    url = settings.resolved_database_url()
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    tasks = TaskRegistry()
    bus = make_bus(settings)
    publisher = Publisher(bus)
    verifier = TokenVerifier(
        settings.jwt_algorithm, settings.jwt_secret.get_secret_value(), settings.jwt_public_key_file
    )
    relay = OutboxRelay(
        sessions, publisher, settings.outbox, skip_locked=not url.startswith("sqlite")
    )
    gateway = Gateway(bus, settings.gateway, verifier, publisher, tasks)
    metrics = HubMetrics()
    locations = make_location_service(settings, sessions, publisher, relay, tasks, metrics, url)
    notices = make_notice_service(sessions, publisher, relay, tasks, gateway)
    cases = make_case_service(settings, sessions, relay, gateway, locations.registry.grids)
    deadlines = DeadlineSweeper(cases, settings.cases.sweep_interval)
    hub = Hub(
        settings, engine, sessions, bus, publisher, relay, gateway, verifier, tasks, metrics,
        locations, notices, cases, deadlines,
    )  # fmt: skip
    hub.cameras = make_camera_registry(settings, sessions, relay, tasks, gateway, cases)
    hub.streams = make_stream_manager(settings, hub.cameras)
    hub.recordings = make_recording_service(
        settings, sessions, relay, tasks, hub.cameras, hub.streams
    )
    hub.ptz = make_ptz_pool(settings, hub.cameras)
    if settings.mqtt.enabled:
        from adapters.mqtt import MqttAdapter

        hub.adapters.append(MqttAdapter(settings.mqtt_url, settings.mqtt, locations, tasks))
    sms = SmsService(sessions, relay, settings.sms, skip_locked=not url.startswith("sqlite"))
    hub.sms = sms
    # Inbound SMS hooks run in order: a notice reply code first, else a citizen's case.
    hub.notice_sms = NoticeSmsFallback(sessions, sms, notices, settings.notices)
    sms.inbound_hooks.append(hub.notice_sms.on_inbound)
    hub.consultation_media = make_consultation_media(settings, hub.streams)
    hub.consultations = make_consultation_service(hub)
    CaseSms(cases, sms, settings.sms).install()
    if settings.gb28181.enabled:
        hub.adapters.append(make_gb28181(hub))
    if settings.videonet.cascade.enabled:
        hub.adapters.append(make_cascade(hub))
    if settings.videonet.calls.enabled:
        hub.adapters.append(make_calls(hub))
    from adapters.sms import SmsAdapter

    hub.adapters.append(SmsAdapter(settings.sms, sms, tasks))
    if settings.citymgmt.enabled:
        from adapters.citymgmt.adapter import CitymgmtAdapter

        hub.adapters.append(
            CitymgmtAdapter(
                settings, cases, tasks, metrics, skip_locked=not url.startswith("sqlite")
            )
        )
    metrics.bind(hub)
    app[HUB] = hub
    try:
        nodes, users = await seed(
            sessions, settings.org_tree_file, settings.users_file if settings.demo_data else None
        )
        if nodes or users:
            log.info("directory seeded", org_nodes=nodes, users=users)
        if settings.cameras.cameras_file is not None:
            added = await seed_cameras(sessions, settings.cameras.cameras_file)
            if added:
                log.info("cameras seeded", cameras=added)
        if settings.using_dev_secret:
            log.warning("using the development JWT secret: set HUB_JWT_SECRET in production")
        await _start_bus(bus)
        await gateway.start()
        if settings.outbox.enabled:
            tasks.spawn(relay.run(), name="outbox relay")
        tasks.spawn(_prune_loop(hub), name="ingest prune")
        worker_count = await locations.registry.load()
        log.info("grid workers loaded", workers=worker_count, grids=len(locations.registry.grids))
        tasks.spawn(locations.watch_silence(), name="worker silence watch")
        tasks.spawn(sms.run(), name="sms sender")
        tasks.spawn(hub.notice_sms.run(), name="notice SMS fallback")
        await notices.resume_fanouts()
        tasks.spawn(deadlines.run(), name="case deadline sweeper")
        tasks.spawn(hub.recordings.run_retention(), name="recording retention")
        tasks.spawn(hub.consultations.run_retention(), name="consultation recording retention")
        cases.intake = CaseIntake(cases)
        tasks.spawn(cases.intake.run(), name="case intake")
        for adapter in hub.adapters:
            await _start_adapter(adapter, tasks)
        log.info("hub started", bus=bus.name, database=engine.dialect.name)
        yield
    finally:
        timeout = settings.shutdown_timeout
        for adapter in reversed(hub.adapters):
            try:
                await asyncio.wait_for(adapter.stop(), timeout)
            except Exception:
                log.warning("adapter did not stop cleanly", adapter=adapter.name, exc_info=True)
        if hub.ptz is not None:  # ONVIF connections to cameras
            try:
                await asyncio.wait_for(hub.ptz.close(), timeout)
            except Exception:
                log.warning("PTZ connections did not close cleanly", exc_info=True)
        if isinstance(hub.consultation_media, ConsultationMedia):  # rooms' connections, files
            try:
                if hub.consultations is not None:  # keep what open rooms recorded
                    rooms_open = list(hub.consultation_media.rooms)
                    await asyncio.wait_for(hub.consultations.shutdown(rooms_open), timeout * 2)
                await asyncio.wait_for(hub.consultation_media.close(timeout), timeout * 2)
            except Exception:
                log.warning("consultation rooms did not close cleanly", exc_info=True)
        if hub.streams is not None:  # close peer connections and media threads
            try:
                await asyncio.wait_for(hub.streams.close(timeout), timeout * 2)
            except Exception:
                log.warning("media plane did not stop cleanly", exc_info=True)
        locations.close()
        await tasks.close(timeout)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(bus.stop(), timeout)
        await engine.dispose()
        log.info("hub stopped")


def make_notice_service(
    sessions: async_sessionmaker[AsyncSession],
    publisher: Publisher,
    relay: OutboxRelay,
    tasks: TaskRegistry,
    gateway: Gateway,
) -> NoticeService:
    """The notice service, its rpc methods registered with the gateway."""
    notices = NoticeService(sessions, publisher, relay, tasks)
    rpc = NoticeRpc(notices)
    gateway.register_rpc("notice.read", rpc.read)
    gateway.register_rpc("notice.unread", rpc.unread)
    return notices


def make_consultation_media(settings: Settings, streams: StreamManager | None) -> ConsultationMedia:
    """The rooms' media plane; cameras enter rooms through the shared stream manager."""
    rooms, media = settings.consultations, settings.media
    config = RoomConfig(
        viewer_queue=media.viewer_queue,
        participant_timeout=rooms.participant_timeout,
        connect_timeout=rooms.connect_timeout,
        force_transcode=rooms.force_transcode,
        transcode=TranscodeConfig(
            bitrate=media.transcode_bitrate, gop=media.transcode_gop, preset=media.transcode_preset
        ),
        record_dir=rooms.recordings_dir if rooms.record else None,
    )
    return ConsultationMedia(config, streams)


def make_consultation_service(hub: Hub) -> ConsultationService:
    """Consultation rooms: rpc methods and the ``room:<id>`` guard registered with the
    gateway; media through ``hub.consultation_media`` when one is installed (NoMedia
    otherwise: joining answers 503 consultation.media_unavailable)."""
    service = ConsultationService(
        hub.sessions,
        hub.publisher,
        hub.relay,
        hub.tasks,
        hub.settings.consultations,
        cases=hub.cases,
        cameras=hub.cameras,
        sms=hub.sms,
        presence=bus_presence(hub.bus),
        media=hub.consultation_media or NoMedia(),
    )
    if hub.consultation_media is not None and hasattr(hub.consultation_media, "on_event"):
        # The media plane reports lost participants, speakers and slots back to the rooms.
        hub.consultation_media.on_event = service.on_media_event
    for method, handler in ConsultationRpc(service).methods().items():
        hub.gateway.register_rpc(method, handler)
    hub.gateway.register_channel_guard("room", service.may_read_channel)
    return service


def make_case_service(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    relay: OutboxRelay,
    gateway: Gateway,
    grids: GridIndex,
) -> CaseService:
    """The case service with its categories; ``case:<id>`` readable by who sees the case."""
    categories = Categories.load(settings.cases.categories_file)
    cases = CaseService(
        sessions,
        relay,
        categories,
        settings.cases,
        lambda lat, lon: grids.locate(LatLon(lat, lon)),
    )
    gateway.register_channel_guard("case", cases.may_read_channel)
    return cases


def make_camera_registry(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    relay: OutboxRelay,
    tasks: TaskRegistry,
    gateway: Gateway,
    cases: CaseService,
) -> CameraRegistry:
    """The camera registry; ``camera:<id>`` readable by who sees the camera."""
    registry = CameraRegistry(sessions, relay, tasks, settings.cameras, cases)
    gateway.register_channel_guard("camera", registry.may_read_channel)
    return registry


def make_stream_manager(settings: Settings, registry: CameraRegistry) -> StreamManager:
    """The media plane; camera pulls report online/offline through the registry."""
    media = settings.media
    pull = PullConfig(
        open_timeout=media.open_timeout,
        read_timeout=media.read_timeout,
        reconnect_min_delay=media.reconnect_min_delay,
        reconnect_max_delay=media.reconnect_max_delay,
        stable_after=media.stable_after,
        rtsp_transport=media.rtsp_transport,
    )
    config = MediaConfig(
        pull=pull,
        idle_timeout=media.idle_timeout,
        max_viewers_per_camera=media.max_viewers_per_camera,
        viewer_queue=media.viewer_queue,
        ready_timeout=media.ready_timeout,
        connect_timeout=media.connect_timeout,
        snapshot_cache_seconds=media.snapshot_cache_seconds,
        record=RecordConfig(max_seconds=media.max_record_seconds),
        transcode=TranscodeConfig(
            bitrate=media.transcode_bitrate, gop=media.transcode_gop, preset=media.transcode_preset
        ),
        force_transcode=media.force_transcode,
    )
    streams = StreamManager(config, on_status=registry.set_status)

    async def source_changed(camera_id: str, record: CameraRecord | None) -> None:
        await streams.source_changed(camera_id, record.source_url if record else None)

    registry.change_hooks.append(source_changed)
    return streams


def make_recording_service(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    relay: OutboxRelay,
    tasks: TaskRegistry,
    registry: CameraRegistry,
    streams: StreamManager,
) -> RecordingService:
    """Camera recordings; an alarm records its camera (``alarm_record_seconds``)."""
    recordings = RecordingService(sessions, relay, tasks, streams, settings.media, settings.cases)
    registry.alarm_hooks.append(recordings.on_alarm)
    return recordings


def make_ptz_pool(settings: Settings, registry: CameraRegistry) -> PtzPool:
    """ONVIF PTZ connections by camera; an edited or deleted camera's is closed."""
    from adapters.onvif import PtzPool, PtzTimeouts

    cams = settings.cameras
    pool = PtzPool(
        PtzTimeouts(connect=cams.ptz_connect_timeout, call=cams.ptz_timeout),
        ttl=cams.ptz_session_ttl,
        max_moves_per_second=cams.ptz_max_moves_per_second,
    )

    async def forget(camera_id: str, _: CameraRecord | None) -> None:
        await pool.forget(camera_id)

    registry.change_hooks.append(forget)
    return pool


def make_gb28181(hub: Hub) -> Adapter:
    """The GB/T 28181 platform: its SIP server, and ``gb28181://`` cameras pulled as PS over
    RTP through the same fan-out as RTSP cameras."""
    from adapters.gb28181 import Gb28181Adapter
    from adapters.gb28181.metrics import Gb28181Collector
    from hub.cameras.devices import VideoDeviceStore
    from streams.ps_pull import PortPool, PsCounters, PsPullConfig, PsRtpPull
    from streams.source import PullSource, SourceHooks, StreamInfo

    assert hub.cameras is not None and hub.streams is not None
    gb, media = hub.settings.gb28181, hub.settings.media
    devices = hub.video_devices = VideoDeviceStore(hub.sessions, hub.cameras)
    adapter = Gb28181Adapter(gb, devices, hub.cameras, hub.tasks)
    hub.gb28181 = adapter
    ports = PortPool(gb.media_port_min, gb.media_port_max)
    counters = PsCounters()
    bind = gb.host if gb.host not in ("", "::") else "0.0.0.0"

    def pull(url: str, camera_id: str, hooks: SourceHooks) -> PullSource:
        config = PsPullConfig(
            media_ip=gb.media_ip or adapter.local.host, bind_host=bind,
            transport=gb.media_transport, port_min=gb.media_port_min,
            port_max=gb.media_port_max, invite_timeout=gb.invite_timeout,
            media_timeout=gb.media_timeout, read_timeout=media.read_timeout,
            reconnect_min_delay=media.reconnect_min_delay,
            reconnect_max_delay=media.reconnect_max_delay, stable_after=media.stable_after,
        )  # fmt: skip

        def on_info(info: StreamInfo) -> None:
            hooks.on_info(info)
            codec = "h265" if info.codec == "hevc" else info.codec
            hub.tasks.spawn(devices.set_codec(camera_id, codec), name="gb28181 channel codec")

        noting = SourceHooks(on_info, hooks.on_packet, hooks.on_status)
        return PsRtpPull(url, camera_id, noting, config, adapter.live, ports, counters)

    hub.streams.source_factories["gb28181"] = pull
    adapter.media_counters = counters
    hub.metrics.registry.register(Gb28181Collector(adapter, counters))
    return adapter


PTZ_MOVE_LIMIT = 10.0
"""Seconds a move ordered from the video network lasts unless stopped or renewed."""


def make_cascade(hub: Hub) -> Adapter:
    """The video network cascade: the hub's cameras shared with the network's GB/T 28181
    gateway; PTZ from above steers the camera (GB/T 28181 or ONVIF), alarms go up."""
    from adapters.onvif import OnvifEndpoint, PtzClient
    from adapters.videonet import CameraDirectory, CascadeAdapter
    from adapters.videonet.metrics import CascadeCollector
    from hub.cameras.devices import parse_channel_url
    from hub.db.models import Camera
    from hub.errors import HubError
    from protocols.gb28181.ptz import PTZ_STOP, PtzCommand, velocity_from_ptz

    assert hub.cameras is not None and hub.streams is not None
    settings = hub.settings.videonet.cascade

    async def steer(record: CameraRecord, command: PtzCommand) -> None:
        if parse_channel_url(record.source_url) is not None:
            if hub.gb28181 is None:
                raise HubError("camera.ptz_unavailable", "GB/T 28181 is not running", 503)
            await hub.gb28181.move(record.id, record.source_url, command, PTZ_MOVE_LIMIT)
            return
        if hub.ptz is None:
            raise HubError("camera.ptz_unavailable", "PTZ is not running", 503)
        async with hub.sessions() as session:
            row = await session.get(Camera, record.id)
        if row is None:
            raise HubError("camera.not_found", f"no camera {record.id}", 404)
        endpoint = OnvifEndpoint.of(
            row.onvif_url, row.source_url, row.onvif_username, row.onvif_password
        )
        pan, tilt, zoom = velocity_from_ptz(command)

        async def act(client: PtzClient) -> None:
            if command == PTZ_STOP:
                await client.stop()
            else:
                await client.continuous_move(pan, tilt, zoom, PTZ_MOVE_LIMIT)

        await hub.ptz.run(record.id, endpoint, act)

    directory = CameraDirectory(settings, hub.sessions)
    adapter = CascadeAdapter(settings, directory, hub.streams, hub.tasks, steer)
    hub.cameras.alarm_hooks.append(adapter.alarm)
    hub.metrics.registry.register(CascadeCollector(adapter))
    hub.cascade = adapter
    return adapter


def make_calls(hub: Hub) -> Adapter:
    """Video calls between consultation rooms and the video network's terminals."""
    from adapters.videonet.calls import CallAdapter
    from adapters.videonet.metrics import CallCollector

    media = hub.consultation_media
    if not isinstance(media, ConsultationMedia) or hub.consultations is None:
        raise RuntimeError("video network calls need the consultation media plane")
    adapter = CallAdapter(hub.settings.videonet.calls, hub.consultations, media, hub.tasks)
    hub.consultations.terminals = adapter
    hub.calls = adapter
    hub.metrics.registry.register(CallCollector(adapter))
    return adapter


def make_location_service(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    publisher: Publisher,
    relay: OutboxRelay,
    tasks: TaskRegistry,
    metrics: HubMetrics,
    database_url: str,
) -> LocationService:
    """The position pipeline with its grid polygons, worker registry and live pushes."""
    loc = settings.locations
    try:
        grids = GridIndex.from_geojson(json.loads(loc.grids_file.read_text(encoding="utf-8")))
    except (OSError, ValueError) as err:
        raise HubError("config.invalid", f"grids file {loc.grids_file}: {err}", 500) from err
    hysteresis = HysteresisConfig(
        max_accuracy_m=loc.boundary_max_accuracy_m,
        min_margin_m=loc.boundary_margin_m,
        confirm_count=loc.boundary_confirm_count,
        confirm_s=loc.boundary_confirm_s,
    )
    registry = WorkerRegistry(sessions, grids, hysteresis, recheck_after=loc.unknown_worker_recheck)
    live = LivePositions(publisher, tasks, metrics.locations, interval=loc.live_interval)
    return LocationService(
        sessions,
        registry,
        live,
        relay,
        loc,
        metrics.locations,
        dialect="postgresql" if database_url.startswith("postgresql") else "sqlite",
        topic_prefix=settings.mqtt.topic_prefix,
    )


async def _start_adapter(adapter: Adapter, tasks: TaskRegistry) -> None:
    """Start an adapter; if its system is not reachable yet, keep retrying in the
    background (capped exponential backoff with jitter) while the hub serves."""
    try:
        await adapter.start()
    except NotReadyError as err:
        log.warning("adapter not ready; retrying in the background", adapter=adapter.name,
                    error=err.message)  # fmt: skip
        tasks.spawn(_retry_adapter(adapter), name=f"start {adapter.name}")


async def _retry_adapter(adapter: Adapter) -> None:
    delay = ADAPTER_RETRY_MIN_DELAY
    while True:
        await asyncio.sleep(random.uniform(delay / 2, delay))
        try:
            await adapter.start()
        except NotReadyError as err:
            log.debug("adapter still not ready", adapter=adapter.name, error=err.message)
            delay = min(delay * 2, ADAPTER_RETRY_MAX_DELAY)
            continue
        log.info("adapter started", adapter=adapter.name)
        return


async def _close_websockets(app: web.Application) -> None:
    hub = app.get(HUB)
    if hub is not None:
        await hub.gateway.close_clients(hub.settings.shutdown_timeout)


async def _prune_loop(hub: Hub) -> None:
    while True:
        await asyncio.sleep(PRUNE_INTERVAL)
        try:
            await ingest.prune(hub)
        except Exception:
            log.warning("pruning ingest bookkeeping failed", exc_info=True)


async def _websocket(request: web.Request) -> web.StreamResponse:
    return await request.app[HUB].gateway.handle(request)


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(WEB_ROOT / "index.html")
