"""Notice pop-ups in a real browser: a notice sent while the dispatcher's console was closed
pops up bottom-right when it opens (rpc notice.unread), a new one pops up live (notice.new
on user:<id>), and 标记已读 stores a WebSocket receipt (rpc notice.read) and closes the card."""

from __future__ import annotations

from typing import Any

import aiohttp
from playwright.async_api import Browser, expect

from hub.db.models import NoticeRecipient
from tests.conftest import RunningHub
from tests.e2e.conftest import open_console
from tests.support.hubs import token

DISPATCHER_ID = "s01c01-dispatcher"
DISPATCHER = token(DISPATCHER_ID, "d01.s01.c01", ["dispatcher"])
SENDER = token("s01-leader", "d01.s01", ["leader"])


async def send(hub: RunningHub, **notice: Any) -> str:
    """Send a notice to the community dispatcher over REST; its id."""
    body = {"body": "请按时参加。", "targets": {"users": [DISPATCHER_ID]}, **notice}
    headers = {"Authorization": f"Bearer {SENDER}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{hub.url}/api/v1/notices", json=body, headers=headers) as resp,
    ):
        reply = await resp.json()
        assert resp.status == 201, reply
        return str(reply["id"])


async def test_notices_pop_up_bottom_right_and_mark_read_stores_a_ws_receipt(
    console_hub: RunningHub, browser: Browser
) -> None:
    hub = console_hub
    offline = await send(hub, kind="meeting", title="关于召开周例会的通知")
    console = await open_console(browser, hub, DISPATCHER)
    page = console.page
    waiting = page.locator(f'#notices .notice-card[data-notice-id="{offline}"]')
    await expect(waiting).to_be_visible()
    await expect(waiting).to_contain_text("会议通知")
    await expect(waiting).to_contain_text("关于召开周例会的通知")
    await expect(waiting).to_contain_text("黄伟")
    box = await page.locator("#notices").bounding_box()
    assert box is not None and box["x"] > 1440 / 2 and box["y"] > 900 / 2  # bottom-right

    live = await send(hub, kind="red_header", level="urgent", title="防汛紧急部署")
    card = page.locator(f'#notices .notice-card[data-notice-id="{live}"]')
    await expect(card).to_be_visible()
    await expect(card).to_contain_text("紧急")
    await expect(card).to_contain_text("红头文件")
    await expect(page.locator("#notices .notice-card")).to_have_count(2)

    await card.get_by_role("button", name="标记已读").click()
    await expect(card).to_have_count(0)
    await expect(waiting).to_be_visible()
    async with hub.hub.sessions() as session:
        receipt = await session.get(NoticeRecipient, (live, DISPATCHER_ID))
    assert receipt is not None and receipt.read_via == "ws" and receipt.read_at is not None

    await page.click("#lang-toggle")
    await expect(waiting.get_by_role("button", name="Mark as read")).to_be_visible()
    await waiting.get_by_role("button", name="Mark as read").click()
    await expect(page.locator("#notices")).to_be_hidden()
    assert console.errors == [], console.errors
