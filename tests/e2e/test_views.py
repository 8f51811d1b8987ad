"""Every main view of the console, at the two screen sizes it is made for: a screenshot of
each under tests/artifacts/ at 1920×1080 (for a human to look at) and at 1366×768, where the
navigation and the view's panels must be visible with nothing wider than the window (no
horizontal scrolling). Views: the map with the workers and cases beside it, a case's
detail, the cameras pane, a notice pop-up, the statistics and the consultations."""

from __future__ import annotations

import time

import pytest
from playwright.async_api import Browser, Locator, Page, expect

from tests.conftest import RunningHub
from tests.e2e.conftest import FULL_HD, LAPTOP, open_console, screenshot
from tests.e2e.test_case_map_stats import located
from tests.e2e.test_console import GRID, subscribed
from tests.e2e.test_notices import DISPATCHER_ID, send
from tests.support.hubs import token
from tests.support.phones import inside, location

WORKER = "s01c01g01-worker"
# The community dispatcher who also leads: every tab is theirs (statistics included).
USER = token(DISPATCHER_ID, "d01.s01.c01", ["dispatcher", "leader"])
OVERFLOW = "() => [document.documentElement.scrollWidth, window.innerWidth]"


async def fits(page: Page, *panels: Locator) -> None:
    """The navigation and ``panels`` are visible and nothing scrolls sideways."""
    await expect(page.locator("#views")).to_be_visible()
    for tab in ("#tab-console", "#tab-stats", "#tab-consultations"):
        await expect(page.locator(tab)).to_be_in_viewport()
    for panel in panels:
        await expect(panel).to_be_visible()
        box = await panel.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 100, box
    width, inner = await page.evaluate(OVERFLOW)
    assert width <= inner, f"the page is {width}px wide in a {inner}px window"


@pytest.mark.parametrize("size", [FULL_HD, LAPTOP], ids=["1920x1080", "1366x768"])
async def test_each_main_view_is_usable_and_screenshotted(
    cases_hub: RunningHub, browser: Browser, size: dict[str, int]
) -> None:
    hub = cases_hub
    tag = f"{size['width']}"
    now = time.time()
    await hub.hub.locations.ingest([location(WORKER, inside(hub.hub, GRID), now - 5)])
    case = await located(hub, "楼道堆放杂物堵塞消防通道", 0.4)
    await send(hub, kind="meeting", title="关于召开网格化服务管理工作例会的通知")

    console = await open_console(browser, hub, USER, viewport=size)
    page = console.page
    await subscribed(page)
    await expect(page.locator(f'#map circle[data-worker-id="{WORKER}"]')).to_be_visible()
    await expect(page.locator(f'#cases tr[data-case-id="{case["id"]}"]')).to_be_visible()
    await expect(page.locator("#notices .notice-card")).to_have_count(1)

    # The map, the workers beside it, the cases and the feed; the notice pop-up over them.
    map_panels = (
        page.locator(".map-panel"),
        page.locator("#map-wrap"),
        page.locator(".pane-workers"),
        page.locator("#cases-panel"),
    )
    await fits(page, *map_panels)
    await screenshot(page, f"view_map_{tag}.png")
    await expect(page.locator("#notices")).to_be_in_viewport()
    await screenshot(page, f"view_notices_{tag}.png")
    await page.locator("#notices .notice-card button").last.click()

    # A case's detail.
    await page.locator(f'#cases tr[data-case-id="{case["id"]}"]').click()
    detail = page.locator("#case-detail .case-dialog")
    await expect(detail).to_be_visible()
    await fits(page, detail)
    await screenshot(page, f"view_case_detail_{tag}.png")
    await page.keyboard.press("Escape")
    await expect(page.locator("#case-detail")).to_be_hidden()

    # The cameras beside the map.
    await page.click("#pane-tab-cameras")
    await expect(page.locator("#cameras tbody tr").first).to_be_visible()
    await fits(page, page.locator(".pane-cameras"), page.locator("#map-wrap"))
    await screenshot(page, f"view_cameras_{tag}.png")

    # Statistics.
    await page.click("#tab-stats")
    await expect(page.locator("#stats-kpis dt").first).to_be_visible()
    await fits(page, page.locator("#stats-panel"))
    await screenshot(page, f"view_stats_{tag}.png")

    # Consultations.
    await page.click("#tab-consultations")
    await fits(page, page.locator("#consultations-view .consult-list-panel"))
    await screenshot(page, f"view_consultations_{tag}.png")
    assert console.errors == [], console.errors
