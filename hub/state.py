"""The hub's running services, kept on the aiohttp app under a typed key."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from hub.auth.tokens import TokenVerifier
from hub.bus import Bus
from hub.cameras.recordings import RecordingService
from hub.cameras.registry import CameraRegistry
from hub.cases.deadlines import DeadlineSweeper
from hub.cases.service import CaseService
from hub.config import Settings
from hub.consultations.contract import RoomMedia
from hub.consultations.service import ConsultationService
from hub.db.outbox import OutboxRelay
from hub.gateway.service import Gateway
from hub.locations.service import LocationService
from hub.metrics import HubMetrics
from hub.notices.service import NoticeService
from hub.notices.sms_fallback import NoticeSmsFallback
from hub.publisher import Publisher
from hub.sms.service import SmsService
from hub.tasks import TaskRegistry
from streams.manager import StreamManager

if TYPE_CHECKING:
    from adapters.gb28181 import Gb28181Adapter
    from adapters.onvif import PtzPool
    from adapters.videonet import CascadeAdapter
    from adapters.videonet.calls import CallAdapter
    from hub.cameras.devices import VideoDeviceStore


class Adapter(Protocol):
    """An integration with an external system (ARCHITECTURE.md, CONVENTIONS.md)."""

    name: str

    @property
    def ready(self) -> bool:
        """Connected and working (feeds /readyz)."""

    async def start(self) -> None:
        """Return once connected, or raise NotReadyError (the hub retries with backoff)."""

    async def stop(self) -> None:
        """Stop; safe to call twice."""


@dataclass
class Hub:
    """Everything one hub process runs."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    bus: Bus
    publisher: Publisher
    relay: OutboxRelay
    gateway: Gateway
    verifier: TokenVerifier
    tasks: TaskRegistry
    metrics: HubMetrics
    locations: LocationService
    notices: NoticeService
    cases: CaseService
    deadlines: DeadlineSweeper
    adapters: list[Adapter] = field(default_factory=list)
    sms: SmsService | None = None
    notice_sms: NoticeSmsFallback | None = None
    cameras: CameraRegistry | None = None
    streams: StreamManager | None = None
    recordings: RecordingService | None = None
    ptz: PtzPool | None = None
    consultations: ConsultationService | None = None
    consultation_media: RoomMedia | None = None
    video_devices: VideoDeviceStore | None = None
    """GB/T 28181 devices and channels (when the adapter is enabled)."""
    gb28181: Gb28181Adapter | None = None
    cascade: CascadeAdapter | None = None
    """The video network cascade (when enabled)."""
    calls: CallAdapter | None = None
    """Video network terminal calls (when enabled)."""
    """The consultation media plane, when one is installed (else NoMedia: 503 for media)."""


HUB = web.AppKey("hub", Hub)
SETTINGS = web.AppKey("settings", Settings)
