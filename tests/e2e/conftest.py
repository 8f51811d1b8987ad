"""Fixtures of the end-to-end tests: a hub served in-process and Debian's Chromium driven
headless by Playwright (no browser download; a missing Chromium fails, never skips).

No request leaves the machine: every browser context the tests make (through the ``browser``
and ``camera_browser`` fixtures) routes each request through :class:`NetworkGuard`, which
aborts any to a host other than the loopback and fails the test at teardown."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, BrowserContext, Page, Route, async_playwright
from sqlalchemy import update

from hub.consultations.media import ConsultationMedia
from hub.db.models import Camera
from tests.conftest import Backend, RunningHub, backend_settings, start_hub
from tests.support.hubs import REPO
from tests.support.rtsp_server import RtspServer, make_clip

ARTIFACTS = REPO / "tests" / "artifacts"
"""Screenshots for a human to look at (ignored by git)."""
FULL_HD = {"width": 1920, "height": 1080}
"""The viewport of the screenshots of the main views."""
LAPTOP = {"width": 1366, "height": 768}
"""The smallest viewport the console must be usable at."""
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
LOCAL_SCHEMES = frozenset({"data", "blob", "about"})

CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
"""The browser the tests drive: Debian's package (``.ci/ensure-chromium`` installs it)."""
LIVE_INTERVAL = 0.2
"""Seconds between a worker's live position pushes (the default 1 s would only slow us)."""
FAST_CASE_LIMIT_HOURS = 0.0003
"""Every case time limit of ``fast_cases_hub``: about a second from registration."""
FAST_SWEEP_INTERVAL = 0.1
"""Seconds between its deadline sweeps."""
CAMERA_MEDIA = {
    "idle_timeout": 1.0,
    "read_timeout": 2.0,
    "open_timeout": 3.0,
    "reconnect_min_delay": 0.2,
    "reconnect_max_delay": 1.0,
    "ready_timeout": 8.0,
}
"""Media settings of ``camera_hub``: a dark camera is found out within seconds."""
LIVE_CAMERAS = ("s01c01g01-gate", "s01c02-market")
"""Seed cameras of street d01.s01 that ``camera_hub`` points at real RTSP servers (the
street's third, s01-crossing, stays unreachable)."""


@pytest.fixture(scope="session")
def chromium() -> str:
    """The Chromium binary; the test fails (not skips) when it is not installed."""
    if not os.access(CHROMIUM, os.X_OK) or not Path(CHROMIUM).is_file():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: run `bash .ci/ensure-chromium` "
            "(apt-get install chromium) or point E2E_CHROMIUM at a Chromium binary"
        )
    return CHROMIUM


def is_local(url: str) -> bool:
    """True for a URL that stays on this machine (loopback host, data:, blob:)."""
    parts = urlsplit(url)
    if parts.scheme in LOCAL_SCHEMES:
        return True
    return (parts.hostname or "") in LOCAL_HOSTS


class NetworkGuard:
    """Aborts every request of the browser contexts it guards that would leave the machine,
    and remembers it; the ``network_guard`` fixture fails the test if any did."""

    def __init__(self) -> None:
        self.blocked: list[str] = []

    async def guard(self, context: BrowserContext) -> BrowserContext:
        """Route all of ``context``'s requests through the guard."""
        await context.route("**/*", self._route)
        return context

    async def _route(self, route: Route) -> None:
        url = route.request.url
        if is_local(url):
            await route.fallback()
            return
        self.blocked.append(url)
        await route.abort("blockedbyclient")

    def take(self) -> list[str]:
        """The blocked URLs so far, forgetting them (for a test that expects some)."""
        blocked, self.blocked = self.blocked, []
        return blocked


@pytest.fixture
def network_guard() -> Iterator[NetworkGuard]:
    """The guard of this test's browser contexts; the test fails if a request tried to leave
    the machine."""
    guard = NetworkGuard()
    yield guard
    if guard.blocked:
        pytest.fail(f"requests left the machine (aborted): {guard.blocked}")


def _guarded(launched: Browser, guard: NetworkGuard) -> Browser:
    """``launched`` with ``new_context`` and ``new_page`` going through ``guard``: the one
    place every page of the tests is made, so none can skip the guard."""
    new_context: Callable[..., Awaitable[BrowserContext]] = launched.new_context

    async def guarded_context(**kwargs: Any) -> BrowserContext:
        return await guard.guard(await new_context(**kwargs))

    async def guarded_page(**kwargs: Any) -> Page:
        context = await guarded_context(**kwargs)
        return await context.new_page()

    # Assigned on the instance: Playwright has no browser-wide route.
    setattr(launched, "new_context", guarded_context)  # noqa: B010
    setattr(launched, "new_page", guarded_page)  # noqa: B010
    return launched


@pytest.fixture
async def browser(chromium: str, network_guard: NetworkGuard) -> AsyncIterator[Browser]:
    """Headless Chromium driven by Playwright (Debian's build: nothing is downloaded), every
    context guarded by ``network_guard``."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium, args=["--disable-dev-shm-usage"]
        )
        try:
            yield _guarded(launched, network_guard)
        finally:
            await launched.close()


@pytest.fixture
async def console_hub(sqlite_backend: Backend) -> AsyncIterator[RunningHub]:
    """A hub on SQLite + memory bus with the demo directory, grids and workers."""
    settings = backend_settings(sqlite_backend, locations={"live_interval": LIVE_INTERVAL})
    running = await start_hub(settings)
    try:
        yield running
    finally:
        await running.server.close()


@asynccontextmanager
async def _cases_hub(backend: Backend, tmp_path: Path, **cases: Any) -> AsyncIterator[RunningHub]:
    """A console hub with these case settings, keeping attachments under ``tmp_path``."""
    settings = backend_settings(
        backend,
        locations={"live_interval": LIVE_INTERVAL},
        cases={"attachments_dir": tmp_path / "attachments", **cases},
    )
    running = await start_hub(settings)
    try:
        yield running
    finally:
        await running.server.close()


@pytest.fixture
async def cases_hub(sqlite_backend: Backend, tmp_path: Path) -> AsyncIterator[RunningHub]:
    """A console hub with the demo case categories, keeping attachments under tmp."""
    async with _cases_hub(sqlite_backend, tmp_path) as running:
        yield running


@pytest.fixture
async def fast_cases_hub(sqlite_backend: Backend, tmp_path: Path) -> AsyncIterator[RunningHub]:
    """A console hub whose case time limits run out about a second after registration (the
    demo category tree with tiny limits), swept ten times a second, attachments under tmp."""
    spec = json.loads((REPO / "config" / "case_categories.json").read_text(encoding="utf-8"))
    spec["time_limits_hours"] = {
        name: dict.fromkeys(limits, FAST_CASE_LIMIT_HOURS)
        for name, limits in spec["time_limits_hours"].items()
    }
    categories = tmp_path / "case_categories.json"
    categories.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    fast = {"categories_file": categories, "sweep_interval": FAST_SWEEP_INTERVAL}
    async with _cases_hub(sqlite_backend, tmp_path, **fast) as running:
        yield running


@dataclass
class Console:
    """A console page, and the script errors it raised (a test asserts there were none)."""

    page: Page
    errors: list[str] = field(default_factory=list)


async def open_console(
    browser: Browser,
    hub: RunningHub,
    token: str,
    *,
    viewport: dict[str, int] | None = None,
    **context_options: Any,
) -> Console:
    """Open the console signed in with ``token`` (in a fresh, guarded browser context;
    1440×900 unless told)."""
    context = await browser.new_context(
        viewport=viewport or {"width": 1440, "height": 900}, **context_options
    )
    page = await context.new_page()
    console = Console(page)
    page.on("pageerror", lambda err: console.errors.append(str(err)))
    await page.goto(f"{hub.url}/?token={token}")
    return console


async def screenshot(page: Page, name: str) -> None:
    """Keep a screenshot under tests/artifacts/ (ignored by git) for a human to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=ARTIFACTS / name)


@pytest.fixture(scope="session")
def camera_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The H.264 High clip the test cameras serve, made once."""
    return make_clip(tmp_path_factory.mktemp("e2e-media") / "camera.mp4")


@pytest.fixture
def rtsp_cameras(camera_clip: Path) -> Iterator[dict[str, RtspServer]]:
    """One running GStreamer RTSP server per camera of ``LIVE_CAMERAS``."""
    servers: dict[str, RtspServer] = {}
    try:
        for camera_id in LIVE_CAMERAS:
            servers[camera_id] = RtspServer(camera_clip)
            servers[camera_id].start()
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture
async def camera_hub(
    sqlite_backend: Backend, tmp_path: Path, rtsp_cameras: dict[str, RtspServer]
) -> AsyncIterator[RunningHub]:
    """A console hub whose cameras ``LIVE_CAMERAS`` are the test RTSP servers."""
    settings = backend_settings(
        sqlite_backend,
        locations={"live_interval": LIVE_INTERVAL},
        cases={"attachments_dir": tmp_path / "attachments"},
        media=CAMERA_MEDIA,
    )
    running = await start_hub(settings)
    try:
        # The registry reads the database on each request: no reload needed.
        async with running.hub.sessions() as session, session.begin():
            for camera_id, server in rtsp_cameras.items():
                await session.execute(
                    update(Camera).where(Camera.id == camera_id).values(source_url=server.url)
                )
        yield running
    finally:
        await running.server.close()


@pytest.fixture
async def camera_browser(chromium: str, network_guard: NetworkGuard) -> AsyncIterator[Browser]:
    """Headless Chromium for live video, with fake media devices. Its host ICE candidates
    stay hidden behind mDNS names as in any user's browser: the hub learns the address from
    the browser's connectivity checks."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium,
            args=[
                "--disable-dev-shm-usage",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
            ],
        )
        try:
            yield _guarded(launched, network_guard)
        finally:
            await launched.close()


@pytest.fixture
async def consultation_hub(sqlite_backend: Backend, tmp_path: Path) -> AsyncIterator[RunningHub]:
    """A console hub whose consultation rooms have the hub's real media plane (aiortc),
    recording under tmp."""
    settings = backend_settings(
        sqlite_backend,
        locations={"live_interval": LIVE_INTERVAL},
        consultations={"recordings_dir": tmp_path / "consultations"},
    )
    running = await start_hub(settings)
    assert isinstance(running.hub.consultation_media, ConsultationMedia)
    try:
        yield running
    finally:
        await running.server.close()
