"""Fixtures of the end-to-end tests: a hub served in-process and Debian's Chromium driven
headless by Playwright (no browser download; a missing Chromium fails, never skips)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.conftest import Backend, RunningHub, backend_settings, start_hub

CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
"""The browser the tests drive: Debian's package (``.ci/ensure-chromium`` installs it)."""
LIVE_INTERVAL = 0.2
"""Seconds between a worker's live position pushes (the default 1 s would only slow us)."""


@pytest.fixture(scope="session")
def chromium() -> str:
    """The Chromium binary; the test fails (not skips) when it is not installed."""
    if not os.access(CHROMIUM, os.X_OK) or not Path(CHROMIUM).is_file():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: run `bash .ci/ensure-chromium` "
            "(apt-get install chromium) or point E2E_CHROMIUM at a Chromium binary"
        )
    return CHROMIUM


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Browser]:
    """Headless Chromium driven by Playwright (Debian's build: nothing is downloaded)."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium, args=["--disable-dev-shm-usage"]
        )
        try:
            yield launched
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


@dataclass
class Console:
    """A console page, and the script errors it raised (a test asserts there were none)."""

    page: Page
    errors: list[str] = field(default_factory=list)


async def open_console(browser: Browser, hub: RunningHub, token: str) -> Console:
    """Open the console signed in with ``token`` (in a fresh browser context)."""
    context = await browser.new_context(viewport={"width": 1440, "height": 900})
    page = await context.new_page()
    console = Console(page)
    page.on("pageerror", lambda err: console.errors.append(str(err)))
    await page.goto(f"{hub.url}/?token={token}")
    return console
