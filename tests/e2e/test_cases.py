"""The cases panel (案件) in a real browser: a community dispatcher sees a case a grid worker
reports through the REST API appear live and change state live; registers and assigns it in
the detail view, with the state, the timeline and the server's record agreeing; sees the
server's own message when it refuses an action; reports a case through the form; and gets
the red marking and the red toast when a case runs past its time limit."""

from __future__ import annotations

import re
import struct
import zlib
from typing import Any

import aiohttp
from playwright.async_api import Browser, Locator, Page, expect

from tests.conftest import RunningHub
from tests.e2e.conftest import open_console
from tests.support.hubs import token

COMMUNITY = "d01.s01.c01"
GRID = "d01.s01.c01.g01"
DISPATCHER_ID = "s01c01-dispatcher"
DISPATCHER_NAME = "吴明"
WORKER_ID = "s01c01g01-worker"
WORKER_NAME = "徐宁"
DISPATCHER = token(DISPATCHER_ID, COMMUNITY, ["dispatcher"])
WORKER = token(WORKER_ID, GRID, ["grid_worker"])


def png(width: int = 4, height: int = 3) -> bytes:
    """A small valid PNG (solid red) for an attachment."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


async def call(
    hub: RunningHub, method: str, path: str, bearer: str, body: Any = None
) -> tuple[int, Any]:
    """One REST call; its status and JSON body."""
    headers = {"Authorization": f"Bearer {bearer}"}
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, f"{hub.url}{path}", json=body, headers=headers) as resp,
    ):
        return resp.status, await resp.json()


async def report(hub: RunningHub, title: str, **fields: Any) -> dict[str, Any]:
    """A grid worker reports a neighbour dispute in their grid; the case."""
    body = {"title": title, "category": "dispute.neighbour", "org": GRID, **fields}
    status, case = await call(hub, "POST", "/api/v1/cases", WORKER, body)
    assert status == 201, case
    return dict(case)


async def act(hub: RunningHub, case_id: str, **action: Any) -> dict[str, Any]:
    """The dispatcher acts on a case through REST; the case after."""
    status, case = await call(hub, "POST", f"/api/v1/cases/{case_id}/actions", DISPATCHER, action)
    assert status == 200, case
    return dict(case)


async def fetch(hub: RunningHub, case_id: str) -> dict[str, Any]:
    """The case as the server has it, with its timeline."""
    status, case = await call(hub, "GET", f"/api/v1/cases/{case_id}", DISPATCHER)
    assert status == 200, case
    return dict(case)


async def dispatcher_console(hub: RunningHub, browser: Browser) -> tuple[Page, list[str]]:
    """The dispatcher's console, subscribed to its org channel, and its script errors."""
    console = await open_console(browser, hub, DISPATCHER)
    page = console.page
    await expect(page.locator("body")).to_have_attribute("data-subscription", "subscribed")
    await expect(page.locator("#cases-empty")).to_be_visible()
    return page, console.errors


def case_row(page: Page, case_id: str) -> Locator:
    """The case's row in the panel."""
    return page.locator(f'#cases tr[data-case-id="{case_id}"]')


async def do_action(page: Page, label: str) -> Locator:
    """Click an action button of the open detail view; its form."""
    detail = page.locator("#case-detail")
    await detail.locator(".case-actions").get_by_role("button", name=label, exact=True).click()
    form = detail.locator(".case-action-form")
    await expect(form).to_be_visible()
    return form


async def test_a_case_reported_through_rest_appears_live_and_follows_its_state(
    cases_hub: RunningHub, browser: Browser
) -> None:
    hub = cases_hub
    page, errors = await dispatcher_console(hub, browser)
    await page.evaluate("window.__notReloaded = true")

    case = await report(hub, "楼上漏水引发邻里纠纷", priority="urgent")
    row = case_row(page, case["id"])
    await expect(row).to_be_visible()
    await expect(row).to_contain_text(case["number"])
    await expect(row).to_contain_text("楼上漏水引发邻里纠纷")
    await expect(row).to_contain_text("矛盾纠纷 / 邻里纠纷")
    await expect(row.locator(".case-priority")).to_have_text("紧急")
    await expect(row.locator(".case-state")).to_have_text("上报")
    await expect(row.locator(".case-centre")).not_to_have_text("")

    newer = await report(hub, "小区门口占道")
    await expect(page.locator("#cases tbody tr").first).to_have_attribute(
        "data-case-id", newer["id"]
    )

    await act(hub, case["id"], action="register")
    await expect(row.locator(".case-state")).to_have_text("立案")
    await expect(row.locator(".case-deadline")).not_to_have_text("—")
    assert await page.evaluate("window.__notReloaded") is True

    # 仅未结案 keeps it, a state filter that does not match drops it, 我的 (assigned to me) too.
    await page.locator("#case-filters select[name=state]").select_option("registered")
    await expect(page.locator("#cases tbody tr")).to_have_count(1)
    await expect(row).to_be_visible()
    await page.locator("#case-filters select[name=state]").select_option("")
    await page.locator("#case-filters input[name=mine]").check()
    await expect(page.locator("#cases-empty")).to_be_visible()
    await page.locator("#case-filters input[name=mine]").uncheck()
    await expect(page.locator("#cases tbody tr")).to_have_count(2)

    await page.click("#lang-toggle")
    await expect(page.locator("#cases-title")).to_have_text("Cases")
    await expect(row.locator(".case-state")).to_have_text("Registered")
    await expect(row).to_contain_text("Disputes / Neighbours")
    assert errors == [], errors


async def test_register_and_assign_in_the_detail_view_update_state_timeline_and_server(
    cases_hub: RunningHub, browser: Browser
) -> None:
    hub = cases_hub
    page, errors = await dispatcher_console(hub, browser)
    case = await report(hub, "出租屋消防通道堵塞", description="三楼楼道堆放杂物。")
    row = case_row(page, case["id"])
    await row.click()
    detail = page.locator("#case-detail")
    await expect(detail).to_be_visible()
    await expect(detail.locator(".case-detail-title")).to_contain_text("出租屋消防通道堵塞")
    await expect(detail.locator(".case-timeline .case-entry")).to_have_count(1)
    await expect(detail.locator(".case-timeline")).to_contain_text(WORKER_NAME)
    actions = detail.locator(".case-actions button")
    await expect(actions).to_have_text(["立案", "不予立案", "上报上级"])

    form = await do_action(page, "立案")
    await form.locator("textarea[name=note]").fill("情况属实，予以立案。")
    await form.get_by_role("button", name="提交").click()
    await expect(detail.locator(".case-dialog")).to_have_attribute("data-state", "registered")
    await expect(detail.locator(".case-field-state dd")).to_have_text("立案")
    await expect(row.locator(".case-state")).to_have_text("立案")
    entries = detail.locator(".case-timeline .case-entry")
    await expect(entries).to_have_count(2)
    await expect(entries.nth(1)).to_contain_text("立案")
    await expect(entries.nth(1)).to_contain_text(DISPATCHER_NAME)
    await expect(entries.nth(1)).to_contain_text("情况属实，予以立案。")

    form = await do_action(page, "指派")
    await form.locator("select[name=assignee]").select_option(WORKER_ID)
    await form.locator("textarea[name=note]").fill("请当天处置。")
    await form.get_by_role("button", name="提交").click()
    await expect(detail.locator(".case-dialog")).to_have_attribute("data-state", "assigned")
    await expect(detail.locator(".case-field-assignee dd")).to_have_text(WORKER_NAME)
    await expect(entries).to_have_count(3)
    await expect(entries.nth(2)).to_contain_text("指派")
    await expect(entries.nth(2)).to_contain_text("请当天处置。")
    await expect(row.locator(".case-state")).to_have_text("已指派")
    await expect(actions).to_have_text(["指派"])  # reassign; start is the assignee's

    record = await fetch(hub, case["id"])
    assert record["state"] == "assigned"
    assert record["assignee"] == WORKER_ID
    assert [e["action"] for e in record["timeline"]] == ["report", "register", "assign"]
    assert [e["actor_id"] for e in record["timeline"][1:]] == [DISPATCHER_ID, DISPATCHER_ID]
    assert record["timeline"][2]["note"] == "请当天处置。"
    assert errors == [], errors


async def test_an_action_the_server_refuses_shows_its_message(
    cases_hub: RunningHub, browser: Browser
) -> None:
    hub = cases_hub
    page, errors = await dispatcher_console(hub, browser)
    case = await report(hub, "深夜广场舞噪声")
    await case_row(page, case["id"]).click()
    form = await do_action(page, "不予立案")
    await form.get_by_role("button", name="提交").click()  # no reason given
    error = form.locator(".case-action-error")
    await expect(error).to_be_visible()
    await expect(error).to_contain_text("reject needs a note saying why")
    await expect(page.locator("#case-detail .case-dialog")).to_have_attribute(
        "data-state", "reported"
    )
    assert (await fetch(hub, case["id"]))["state"] == "reported"
    assert errors == [], errors


async def test_the_report_form_files_a_case_that_lands_in_the_list(
    cases_hub: RunningHub, browser: Browser
) -> None:
    hub = cases_hub
    page, errors = await dispatcher_console(hub, browser)
    await page.get_by_role("button", name="上报案件").click()
    form = page.locator("#case-report form")
    await expect(form).to_be_visible()
    await form.locator("input[name=title]").fill("路灯损坏")
    await form.locator("textarea[name=description]").fill("幸福路 12 号门口路灯不亮。")
    await form.locator("select[name=category]").select_option("citymgmt.facilities")
    await form.locator("select[name=priority]").select_option("urgent")
    await form.locator("select[name=org]").select_option(GRID)
    await form.get_by_role("button", name="上报", exact=True).click()
    await expect(form).to_be_hidden()
    detail = page.locator("#case-detail .case-dialog")
    await expect(detail).to_have_attribute("data-state", "reported")
    case_id = await detail.get_attribute("data-case-id")
    assert case_id
    await expect(case_row(page, case_id)).to_contain_text("城市管理 / 市政设施损坏")
    record = await fetch(hub, case_id)
    assert (record["title"], record["org"], record["tier_org"]) == ("路灯损坏", GRID, COMMUNITY)
    assert (record["priority"], record["reporter_id"]) == ("urgent", DISPATCHER_ID)
    assert errors == [], errors


async def test_the_assignee_starts_and_feeds_back_with_a_photo_shown_as_a_thumbnail(
    cases_hub: RunningHub, browser: Browser
) -> None:
    hub = cases_hub
    case = await report(hub, "井盖缺失")
    await act(hub, case["id"], action="register")
    await act(hub, case["id"], action="assign", assignee=WORKER_ID)
    console = await open_console(browser, hub, WORKER)
    page = console.page
    await case_row(page, case["id"]).click()
    detail = page.locator("#case-detail")
    await expect(detail.locator(".case-actions button")).to_have_text(["开始处置"])

    form = await do_action(page, "开始处置")
    await form.get_by_role("button", name="提交").click()
    await expect(detail.locator(".case-dialog")).to_have_attribute("data-state", "handling")

    form = await do_action(page, "反馈")
    photo = {"name": "现场.png", "mimeType": "image/png", "buffer": png()}
    await form.locator("input[name=file]").set_input_files(photo)
    await form.locator("textarea[name=note]").fill("已设置警示标志并更换井盖。")
    await form.get_by_role("button", name="提交").click()
    await expect(detail.locator(".case-dialog")).to_have_attribute("data-state", "fed_back")
    thumb = detail.locator(".case-attachments img.case-thumb")
    await expect(thumb).to_have_attribute("alt", "现场.png")
    await expect(thumb).to_have_attribute("src", re.compile(r"^blob:"))
    await expect(thumb).to_have_js_property("complete", True)
    assert await thumb.evaluate("img => img.naturalWidth") == 4
    await expect(detail.locator(".case-entry.entry-feed_back")).to_contain_text("附件 1 个")

    record = await fetch(hub, case["id"])
    assert record["state"] == "fed_back"
    assert [a["filename"] for a in record["attachments"]] == ["现场.png"]
    assert record["timeline"][-1]["details"]["attachments"] == [record["attachments"][0]["id"]]
    assert console.errors == [], console.errors


async def test_an_overdue_case_is_marked_red_with_a_red_toast(
    fast_cases_hub: RunningHub, browser: Browser
) -> None:
    hub = fast_cases_hub
    page, errors = await dispatcher_console(hub, browser)
    case = await report(hub, "电动车楼道充电")
    await act(hub, case["id"], action="register")
    await act(hub, case["id"], action="assign", assignee=WORKER_ID)

    toast = page.locator(f'#case-alerts .case-toast[data-case-id="{case["id"]}"]')
    await expect(toast).to_have_attribute("data-kind", "overdue")
    await expect(toast).to_have_class("case-toast alert-overdue")
    await expect(toast).to_contain_text("超期告警")
    await expect(toast).to_contain_text(case["number"])
    row = case_row(page, case["id"])
    await expect(row).to_have_attribute("data-alert", "overdue")
    await expect(row.locator(".alert-badge.alert-overdue")).to_have_text("超期")

    await toast.get_by_role("button", name="查看").click()
    await expect(toast).to_have_count(0)
    detail = page.locator("#case-detail")
    await expect(detail.locator(".case-field-deadline")).to_have_class(
        "case-field-deadline alert-overdue"
    )
    await expect(detail.locator(".case-entry.entry-overdue")).to_contain_text("超期告警")
    assert errors == [], errors
