"""The SMS adapter: builds the configured provider (console, http, smpp), connects it and
hands it to the SMS service, which owns the queue. CMPP would be one more provider."""

from __future__ import annotations

import asyncio

import structlog

from adapters.sms.console import ConsoleProvider
from adapters.sms.http import HttpProvider
from adapters.sms.smpp import SmppProvider
from hub.config import SmsSettings
from hub.sms.service import SmsService
from hub.tasks import TaskRegistry, cancel_and_wait

log = structlog.get_logger(__name__)


class SmsAdapter:
    """Adapter protocol (hub/state.py) around one SMS provider."""

    name = "sms"

    def __init__(self, settings: SmsSettings, service: SmsService, tasks: TaskRegistry) -> None:
        self._settings = settings
        self._service = service
        self._tasks = tasks
        self._up = asyncio.Event()
        self._watch: asyncio.Task[None] | None = None
        self.provider: ConsoleProvider | HttpProvider | SmppProvider
        if settings.provider == "smpp":
            self.provider = SmppProvider(settings, service, service.counters)
        elif settings.provider == "http":
            self.provider = HttpProvider(settings)
        else:
            self.provider = ConsoleProvider(service, tasks)
        self._started = False

    @property
    def ready(self) -> bool:
        """The provider can submit."""
        return self._started and self.provider.ready

    async def start(self) -> None:
        """Connect the provider (SMPP: bind; raises NotReadyError) and start sending."""
        if isinstance(self.provider, SmppProvider):
            await self.provider.start(self._up)
            self._watch = self._tasks.spawn(self._wake_on_rebind(), name="sms rebind watch")
        self._service.attach(self.provider)
        self._started = True
        log.info("SMS provider ready", provider=self.provider.name)

    async def _wake_on_rebind(self) -> None:
        while True:
            await self._up.wait()
            self._up.clear()
            self._service.notify()

    async def stop(self) -> None:
        """Stop the provider; safe to call twice."""
        self._started = False
        if self._watch is not None:
            await cancel_and_wait([self._watch])
            self._watch = None
        if isinstance(self.provider, SmppProvider):
            await self.provider.stop()
        elif isinstance(self.provider, HttpProvider):
            await self.provider.close()
