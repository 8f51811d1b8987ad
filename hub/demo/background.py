"""``hub serve --demo``: the demo driver as a background task of the hub process, started
once the hub is up and stopped first on shutdown. It shares nothing with the hub but the
configuration: it reaches it over HTTP and MQTT sockets like any other client."""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from aiohttp import web

from hub.config import Settings
from hub.demo.driver import DemoError, default_broker, run_demo
from hub.demo.options import DemoOptions
from hub.state import HUB

log = structlog.get_logger(__name__)


def attach_demo(app: web.Application, settings: Settings, url: str) -> None:
    """Run the demo against ``url`` while ``app`` serves (before the app starts)."""
    stop = asyncio.Event()
    running: list[asyncio.Task[None]] = []

    def broker() -> str | None:
        # The broker the hub's MQTT adapter really uses (the embedded one may have moved
        # to a free port); read once /readyz says the adapter is connected.
        for adapter in app[HUB].adapters:
            found = getattr(adapter, "broker_url", None)
            if isinstance(found, str):
                return found
        return default_broker(settings, url)

    async def demo() -> None:
        options = DemoOptions(url=url, topic_prefix=settings.mqtt.topic_prefix)
        try:
            await run_demo(settings, options, stop=stop, broker=broker)
        except DemoError as err:
            log.warning("demo stopped", error=str(err))

    async def start(app: web.Application) -> None:
        running.append(app[HUB].tasks.spawn(demo(), name="demo driver"))

    async def shutdown(app: web.Application) -> None:
        stop.set()
        for task in running:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(task), settings.shutdown_timeout)

    app.on_startup.append(start)
    # First on shutdown: the demo's clients leave before the hub closes their sockets.
    app.on_shutdown.insert(0, shutdown)
