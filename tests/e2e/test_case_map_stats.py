"""Case markers on the map and the leaders' statistics page (案件统计) in a real browser: a
case reported over REST with a location is a marker that follows the case's state live and
opens the detail; an overdue case is outlined red; the statistics page shows the same figures
as ``GET /api/v1/cases/stats`` for its range, one chart segment per state and one bar per
category, the org ranking, and switches to English."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from playwright.async_api import Browser, Locator, Page, expect

from tests.conftest import RunningHub
from tests.e2e.conftest import Console, screenshot
from tests.e2e.conftest import open_console as shared_open_console
from tests.e2e.test_cases import DISPATCHER, GRID, WORKER, WORKER_ID, act, call, report
from tests.support.hubs import token
from tests.support.phones import inside

TIMEZONE = "Asia/Shanghai"
"""The browser's time zone: the page's dates are local days, sent with their offset."""
STATS_DAYS = 30
LEADER = token("d01-leader", "d01", ["leader"])
OTHER_GRID = "d01.s02.c01.g01"
OTHER_WORKER = token("s02c01g01-worker", OTHER_GRID, ["grid_worker"])
BLUE, ORANGE, RED = "rgb(63, 167, 255)", "rgb(255, 159, 28)", "rgb(255, 77, 79)"


async def open_console(browser: Browser, hub: RunningHub, bearer: str) -> Console:
    """The console signed in with ``bearer``, in a browser on China Standard Time."""
    console = await shared_open_console(browser, hub, bearer, timezone_id=TIMEZONE)
    await expect(console.page.locator("body")).to_have_attribute("data-subscription", "subscribed")
    return console


def marker(page: Page, case_id: str) -> Locator:
    """The case's marker on the map."""
    return page.locator(f'#map g.case-marker[data-case-id="{case_id}"]')


async def located(hub: RunningHub, title: str, fx: float, **fields: Any) -> dict[str, Any]:
    """A case reported at a point inside the demo grid ``GRID``."""
    point = inside(hub.hub, GRID, fx, 0.5)
    return await report(hub, title, location={"lat": point.lat, "lon": point.lon}, **fields)


async def test_a_located_case_is_a_marker_that_follows_its_state_and_opens_the_detail(
    cases_hub: RunningHub, browser: Browser
) -> None:
    hub = cases_hub
    before = await located(hub, "路灯损坏", 0.3)
    console = await open_console(browser, hub, DISPATCHER)
    page = console.page
    await expect(marker(page, before["id"])).to_have_attribute("data-state", "reported")

    case = await located(hub, "楼道堆放杂物", 0.7, priority="urgent")
    unplaced = await report(hub, "没有位置的案件")
    await expect(page.locator(f'#cases tr[data-case-id="{unplaced["id"]}"]')).to_be_visible()
    pin = marker(page, case["id"])
    await expect(pin).to_have_class("case-marker state-reported group-new priority-urgent")
    await expect(pin.locator(".case-marker-ring")).to_have_count(1)
    await expect(pin.locator(".case-marker-body")).to_have_css("fill", BLUE)
    await expect(page.locator("#map g.case-marker")).to_have_count(2)  # not the unplaced one

    await act(hub, case["id"], action="register")
    await expect(pin).to_have_attribute("data-state", "registered")
    await expect(pin).to_have_class("case-marker state-registered group-new priority-urgent")
    await act(hub, case["id"], action="assign", assignee=WORKER_ID)
    await expect(pin).to_have_attribute("data-state", "assigned")
    await expect(pin.locator(".case-marker-body")).to_have_css("fill", ORANGE)

    await pin.hover()
    await expect(page.locator("#map-tooltip")).to_contain_text(case["number"])
    await expect(page.locator("#map-tooltip")).to_contain_text("楼道堆放杂物")
    await expect(page.locator("#map-tooltip")).to_contain_text("已指派")
    await screenshot(page, "case_map_markers.png")

    await pin.click()
    detail = page.locator("#case-detail")
    await expect(detail).to_be_visible()
    await expect(detail.locator(".case-detail-title")).to_contain_text("楼道堆放杂物")
    await expect(detail.locator(".case-dialog")).to_have_attribute("data-state", "assigned")
    assert console.errors == [], console.errors


async def test_an_overdue_case_marker_is_outlined_red(
    fast_cases_hub: RunningHub, browser: Browser
) -> None:
    hub = fast_cases_hub
    console = await open_console(browser, hub, DISPATCHER)
    page = console.page
    case = await located(hub, "占道经营", 0.5)
    pin = marker(page, case["id"])
    await expect(pin).to_have_attribute("data-alert", "")
    await act(hub, case["id"], action="register")
    await expect(pin).to_have_attribute("data-alert", "overdue")
    await expect(pin.locator(".case-marker-body")).to_have_css("stroke", RED)
    assert console.errors == [], console.errors


async def seed_cases(hub: RunningHub) -> None:
    """Five cases in two streets: reported ×2, registered, rejected, evaluated (on time, 4/5);
    categories dispute ×2, security, citymgmt, safety."""
    await report(hub, "邻里噪音纠纷")
    registered = await report(hub, "出租屋人员复杂", category="security.rental")
    await act(hub, registered["id"], action="register")
    rejected = await report(hub, "重复上报的占道", category="citymgmt.street_vending")
    await act(hub, rejected["id"], action="reject", note="重复上报")
    done = await report(hub, "家庭矛盾调解", category="dispute.family")
    await act(hub, done["id"], action="register")
    await act(hub, done["id"], action="assign", assignee=WORKER_ID)
    for step in ("start", "feed_back"):
        path = f"/api/v1/cases/{done['id']}/actions"
        status, body = await call(hub, "POST", path, WORKER, {"action": step, "note": "已处理"})
        assert status == 200, body
    await act(hub, done["id"], action="close")
    await act(hub, done["id"], action="evaluate", satisfaction=4)
    body = {"title": "燃气管道老化", "category": "safety.gas", "org": OTHER_GRID}
    status, other = await call(hub, "POST", "/api/v1/cases", OTHER_WORKER, body)
    assert status == 201, other


def page_range() -> dict[str, str]:
    """The page's default range as the hub gets it: the last 30 local days, today included."""
    today = datetime.now(ZoneInfo(TIMEZONE)).date()
    start = datetime.combine(today - timedelta(days=STATS_DAYS), datetime.min.time())
    end = datetime.combine(today + timedelta(days=1), datetime.min.time())
    zone = ZoneInfo(TIMEZONE)
    return {
        "from": start.replace(tzinfo=zone).isoformat(),
        "to": end.replace(tzinfo=zone).isoformat(),
    }


async def stats(hub: RunningHub, **params: str) -> dict[str, Any]:
    """GET /api/v1/cases/stats as the leader."""
    query = "&".join(f"{k}={v.replace('+', '%2B')}" for k, v in params.items())
    status, body = await call(hub, "GET", f"/api/v1/cases/stats?{query}", LEADER)
    assert status == 200, body
    return dict(body)


def rate(value: float | None) -> str:
    """A rate as the page shows it."""
    return "—" if value is None else f"{value * 100:.1f}%"


async def test_the_statistics_page_shows_the_hubs_figures_charts_and_ranking(
    cases_hub: RunningHub, browser: Browser
) -> None:
    hub = cases_hub
    await seed_cases(hub)
    console = await open_console(browser, hub, LEADER)
    page = console.page
    await page.locator("#tab-stats").click()
    panel = page.locator("#stats-panel")
    await expect(panel).to_have_attribute("data-loaded", "true")
    await expect(page.locator("#console-view")).to_be_hidden()

    expected = await stats(hub, **page_range(), level="street")
    overall = expected["overall"]
    assert overall["total"] == 5 and overall["closed"] == 1, overall

    def kpi(name: str) -> Locator:
        return panel.locator(f'.kpi[data-kpi="{name}"] dd')

    await expect(kpi("total")).to_have_text(str(overall["total"]))
    await expect(kpi("closed")).to_have_text(str(overall["closed"]))
    await expect(kpi("closure_rate")).to_have_text(rate(overall["closure_rate"]))
    await expect(kpi("on_time_rate")).to_have_text(rate(overall["on_time_rate"]))
    await expect(kpi("satisfaction")).to_have_text(f"{overall['satisfaction']:.2f}")
    assert (rate(overall["on_time_rate"]), overall["satisfaction"]) == ("100.0%", 4)

    states = {state for state, n in expected["by_state"].items() if n > 0}
    assert states == {"reported", "registered", "rejected", "evaluated"}
    segments = panel.locator("#stats-state-chart svg path.chart-segment")
    await expect(segments).to_have_count(len(states))
    for state, n in expected["by_state"].items():
        segment = panel.locator(f'#stats-state-chart path.chart-segment[data-key="{state}"]')
        await expect(segment).to_have_attribute("data-value", str(n))
    categories = {code for code, n in expected["by_category"].items() if n > 0}
    assert categories == {"dispute", "security", "citymgmt", "safety"}
    bars = panel.locator("#stats-category-chart svg rect.chart-bar")
    await expect(bars).to_have_count(len(categories))
    await expect(panel.locator("#stats-state-chart svg > title")).to_have_text("案件状态分布")
    dispute = panel.locator('#stats-category-chart rect.chart-bar[data-key="dispute"]')
    await expect(dispute).to_have_attribute("data-value", "2")

    rows = panel.locator("#stats-ranking tbody tr")
    await expect(rows).to_have_count(len(expected["by_org"]))
    assert [org["org"] for org in expected["by_org"]] == ["d01.s01", "d01.s02"]
    await expect(rows.first).to_have_attribute("data-org", "d01.s01")
    await expect(rows.first.locator(".rank")).to_have_text("1")
    await expect(rows.first.locator(".on-time-rate")).to_have_text("100.0%")
    await expect(rows.first.locator(".satisfaction")).to_have_text("4.00")
    await expect(rows.nth(1).locator(".org")).not_to_have_text("")
    await expect(rows.nth(1).locator(".rank")).to_have_text("—")
    await screenshot(page, "case_stats.png")

    # A new level is fetched at once: the ranking lists the communities.
    await page.locator("#stats-level").select_option("community")
    by_community = (await stats(hub, **page_range(), level="community"))["by_org"]
    await expect(rows.first).to_have_attribute("data-org", by_community[0]["org"])
    await expect(rows).to_have_count(len(by_community))

    await page.click("#lang-toggle")
    await expect(kpi("on_time_rate").locator("xpath=../dt")).to_have_text("On-time closure rate")
    await screenshot(page, "case_stats_en.png")
    assert console.errors == [], console.errors
