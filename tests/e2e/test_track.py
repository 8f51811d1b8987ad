"""Track playback (轨迹回放) in a real browser: a grid worker's phone reports a zig-zag walk
through the hub's location service (as the MQTT adapter hands pings over); the community
dispatcher opens playback for the worker over the last minutes, sees the track drawn, plays it
at 64× and watches the marker move and the slider advance, then scrubs the slider to the end
and finds the marker on the last fix."""

from __future__ import annotations

import time

from playwright.async_api import Browser, Page, expect

from tests.conftest import RunningHub
from tests.e2e.conftest import FULL_HD, open_console, screenshot
from tests.e2e.test_console import DISPATCHER, GRID, WORKER, subscribed, worker_name
from tests.support.phones import inside, location

FIXES = 10
STEP_S = 60.0
"""Seconds between two fixes of the walk: nine minutes in all, nine seconds at 64×."""
RANGE_MINUTES = 15

MARKER = "#map .track-marker"
LINE = "#map .track-line"

MOVED = """
([cx, cy, value]) => {
  const m = document.querySelector('#map .track-marker');
  const slider = document.querySelector('#track-slider');
  return m.getAttribute('cx') !== cx && m.getAttribute('cy') !== cy && +slider.value > value;
}
"""


async def marker_position(page: Page) -> tuple[str, str]:
    """The moving marker's centre as drawn."""
    marker = page.locator(MARKER)
    return (await marker.get_attribute("cx") or "", await marker.get_attribute("cy") or "")


async def marker_time(page: Page) -> float:
    """The playback time the marker stands for."""
    return float(await page.locator(MARKER).get_attribute("data-time") or "nan")


async def local_input_value(page: Page, seconds: float) -> str:
    """``seconds`` as the page writes a datetime-local value (its own time zone)."""
    return str(
        await page.evaluate(
            """(s) => { const d = new Date(s * 1000), p = (n) => String(n).padStart(2, '0');
              return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}` +
                     `T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`; }""",
            seconds,
        )
    )


async def test_playback_draws_the_track_plays_it_at_64x_and_scrubs_to_the_last_fix(
    console_hub: RunningHub, browser: Browser
) -> None:
    hub = console_hub
    now = time.time()
    first = now - STEP_S * FIXES
    walk = [
        location(
            WORKER,
            inside(hub.hub, GRID, fx=0.2 + 0.6 * i / (FIXES - 1), fy=0.3 if i % 2 else 0.7),
            first + STEP_S * i,
        )
        for i in range(FIXES)
    ]
    await hub.hub.locations.ingest(walk)

    console = await open_console(browser, hub, DISPATCHER, viewport=FULL_HD)
    page = console.page
    await subscribed(page)
    await expect(page.locator(f'#map circle[data-worker-id="{WORKER}"]')).to_be_visible()

    # Open playback from the map panel's button, for the last minutes.
    bar = page.locator("#track-bar")
    await expect(page.locator("#track-open")).to_have_text("轨迹回放")
    await page.click("#track-open")
    await expect(bar).to_be_visible()
    await page.select_option("#track-worker", WORKER)
    await expect(page.locator("#track-worker")).to_contain_text(await worker_name(hub, WORKER))
    await page.fill("#track-from", await local_input_value(page, now - RANGE_MINUTES * 60))
    await page.fill("#track-to", await local_input_value(page, now + 60))
    await page.click("#track-load")
    await expect(bar).to_have_attribute("data-state", "ready")
    await expect(page.locator(LINE)).to_have_count(1)
    points = (await page.locator(LINE).get_attribute("points") or "").split()
    assert len(points) >= 2
    assert abs(await marker_time(page) - first) < 0.01
    await expect(page.locator("#track-summary")).to_contain_text(f"{FIXES} 个定位点")
    assert await marker_position(page) == tuple(points[0].split(","))

    # Play at 64×: the marker moves along the line and the slider advances.
    await page.select_option("#track-speed", "64")
    start_cx, start_cy = await marker_position(page)
    start_value = float(await page.locator("#track-slider").input_value())
    await page.click("#track-play")
    await expect(bar).to_have_attribute("data-state", "playing")
    await expect(page.locator("#track-play")).to_have_text("暂停")
    await page.wait_for_function(MOVED, arg=[start_cx, start_cy, start_value])
    shown = await page.locator("#track-time").text_content()
    await page.wait_for_function(
        "(shown) => document.querySelector('#track-time').textContent !== shown", arg=shown
    )
    await screenshot(page, "track_playback.png")
    await page.click("#track-play")
    await expect(bar).to_have_attribute("data-state", "ready")

    # Scrub to the end: the marker is on the last fix, the clock on its time.
    await page.focus("#track-slider")
    await page.keyboard.press("End")
    last_time = first + STEP_S * (FIXES - 1)
    assert abs(await marker_time(page) - last_time) < 0.01
    assert await marker_position(page) == tuple(points[-1].split(","))
    clock = await page.locator("#track-time").get_attribute("data-time")
    assert clock == await page.locator(MARKER).get_attribute("data-time")

    await page.click("#lang-toggle")
    await expect(page.locator("#track-play")).to_have_text("Play")
    await expect(page.locator("#track-summary")).to_contain_text(f"{FIXES} fixes")
    await page.click("#track-close")
    await expect(bar).to_be_hidden()
    await expect(page.locator(MARKER)).to_have_count(0)
    assert console.errors == []


async def test_a_click_on_a_worker_opens_playback_for_them_over_the_last_hour(
    console_hub: RunningHub, browser: Browser
) -> None:
    hub = console_hub
    now = time.time()
    await hub.hub.locations.ingest(
        [
            location(WORKER, inside(hub.hub, GRID, fx=0.3), now - 300),
            location(WORKER, inside(hub.hub, GRID, fx=0.7), now - 120),
        ]
    )
    console = await open_console(browser, hub, DISPATCHER)
    page = console.page
    await subscribed(page)
    await page.locator(f'#workers tr[data-worker-id="{WORKER}"]').click()
    await expect(page.locator("#track-bar")).to_have_attribute("data-state", "ready")
    assert await page.locator("#track-worker").input_value() == WORKER
    span = await page.evaluate(
        "() => (new Date(document.querySelector('#track-to').value) -"
        " new Date(document.querySelector('#track-from').value)) / 1000"
    )
    assert span == 3600
    await expect(page.locator(LINE)).to_have_count(1)
    assert console.errors == []
