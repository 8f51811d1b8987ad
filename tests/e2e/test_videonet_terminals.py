"""Video network terminals (视联网终端) in a consultation room, in Chromium with a fake camera
and a real baresip terminal reached through the hub's SIP calls: the host opens a room and
sees its dial-in code, opens the call dialog, sees the configured terminal, calls it; the
terminal answers and appears in the participants with its icon and 已接通, its blue picture
plays in a tile; the host hangs it up from the list: the row says 已挂断 and baresip sees the
call closed. The English strings follow a language switch. No request leaves the machine
(the e2e guard) and the page logs no error."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Locator, expect

from hub.consultations.media import ConsultationMedia
from hub.consultations.rooms import room_code
from tests.conftest import Backend, RunningHub, backend_settings, start_hub
from tests.e2e.conftest import LAPTOP, LIVE_INTERVAL, screenshot
from tests.e2e.test_consultations import (
    HOST,
    HOST_TOKEN,
    MEDIA_TIMEOUT_MS,
    open_console,
    plays,
    room,
)
from tests.e2e.test_views import OVERFLOW
from tests.support.baresip import Baresip, free_sip_port
from tests.support.videonet_media import BLUE, make_solid_clip

TERMINAL_NAME = "县指挥中心"
TITLE = "视联网终端会商"
CALL_WAIT = 30.0
"""Seconds for baresip to see the call established or closed."""


@pytest.fixture
async def terminal(tmp_path: Path) -> AsyncIterator[Baresip]:
    """A baresip terminal that answers at once and sends a blue picture."""
    clip = make_solid_clip(tmp_path / "terminal.mp4", BLUE)
    async with Baresip(
        tmp_path / "terminal", user="t1001", answermode="auto", clip=clip, sip_port=free_sip_port()
    ) as running:
        yield running


@pytest.fixture
async def calls_hub(
    sqlite_backend: Backend, tmp_path: Path, terminal: Baresip
) -> AsyncIterator[RunningHub]:
    """A console hub with the real media plane and video network calls, whose gateway is the
    baresip terminal itself and whose one configured terminal is that baresip."""
    port = terminal.sip_port
    media_ports = 44000 + (port % 50) * 100
    calls = {
        "enabled": True,
        "host": "127.0.0.1",
        "port": 0,
        "gateway_host": "127.0.0.1",
        "gateway_port": port,
        "username": "gw",
        "password": "pw",
        "terminals": [{"uri": terminal.contact_uri, "name": TERMINAL_NAME, "org": "d01"}],
        "rtp_timeout": 5.0,
        "media_port_min": media_ports,
        "media_port_max": media_ports + 99,
    }
    settings = backend_settings(
        sqlite_backend,
        locations={"live_interval": LIVE_INTERVAL},
        consultations={"recordings_dir": tmp_path / "consultations", "record": False},
        videonet={"calls": calls},
    )
    running = await start_hub(settings)
    assert isinstance(running.hub.consultation_media, ConsultationMedia)
    assert running.hub.calls is not None
    try:
        yield running
    finally:
        await running.server.close()


def terminal_row(page_room: Locator, pid: str) -> Locator:
    """The terminal's row in the participants list."""
    return page_room.locator(f'.consult-participants li[data-participant-id="{pid}"]')


async def test_host_calls_a_terminal_sees_its_video_and_hangs_it_up(
    calls_hub: RunningHub, terminal: Baresip, camera_browser: Browser
) -> None:
    hub = calls_hub
    host = await open_console(camera_browser, hub, HOST_TOKEN)
    page = host.page

    # The host opens a room (nobody invited) and is taken into it.
    await page.locator("#tab-consultations").click()
    await page.locator("#consult-create-open").click()
    form = page.locator("#consult-create form")
    await form.locator('input[name="title"]').fill(TITLE)
    await form.locator(".consult-create-submit").click()
    view = room(page)
    await expect(view).to_have_attribute("data-state", "joined", timeout=MEDIA_TIMEOUT_MS)
    consultation_id = await view.get_attribute("data-consultation-id")
    assert consultation_id

    # The header shows the digits a terminal dials to call in.
    dial = view.locator(".consult-dial-code")
    await expect(dial).to_be_visible()
    await expect(dial).to_contain_text("终端拨入号码")
    await expect(dial.locator(".consult-dial-digits")).to_have_text(room_code(consultation_id))

    # The call dialog lists the configured terminal; calling it closes the dialog.
    call_button = view.locator(".consult-call-terminal")
    await expect(call_button).to_have_text("呼叫视联网终端")
    await call_button.click()
    dialog = view.locator(".consult-terminal-overlay")
    await expect(dialog).to_be_visible()
    await expect(dialog.locator("h2")).to_have_text("呼叫视联网终端")
    item = dialog.locator(f'.consult-terminal-item[data-uri="{terminal.contact_uri}"]')
    await expect(item).to_contain_text(TERMINAL_NAME)
    await expect(item.locator(".terminal-icon")).to_have_count(1)
    # A typed address the hub refuses: the error shows in the dialog, which stays open.
    await dialog.locator('input[name="uri"]').fill("sip:no such terminal")
    await dialog.locator(".consult-terminal-submit").click()
    await expect(dialog.locator(".consult-terminal-error")).to_contain_text("地址无效")
    await expect(dialog).to_be_visible()
    await screenshot(page, "consultation_terminal_dialog.png")
    await item.locator(".consult-terminal-dial").click()
    await expect(dialog).to_be_hidden()

    # The terminal answers: listed with its icon and name, connected, its picture playing.
    pid = "terminal:" + terminal.contact_uri.removeprefix("sip:")
    row = terminal_row(view, pid)
    await expect(row).to_be_visible()
    await expect(row.locator(".consult-person-name")).to_have_text(TERMINAL_NAME)
    await expect(row.locator(".terminal-icon")).to_have_count(1)
    await expect(row.locator(".consult-call")).to_have_text("已接通", timeout=MEDIA_TIMEOUT_MS)
    await terminal.wait_event("CALL_ESTABLISHED", timeout=CALL_WAIT)
    await plays(page, pid)
    tile = view.locator(f'.consult-tile[data-source="{pid}"]')
    await expect(tile).to_have_class(re.compile(r"\bterminal\b"))
    await expect(tile.locator(".consult-tile-name")).to_have_text(TERMINAL_NAME)
    await expect(tile.locator(".terminal-icon")).to_have_count(1)
    # The host picks what the terminal sees: the active speaker, or a participant.
    show = row.locator(".consult-show-select")
    await expect(show).to_have_value("")
    await expect(show.locator("option")).to_have_count(2)  # the speaker, the host
    await show.select_option(HOST)
    await expect(show).to_have_value(HOST)
    await show.select_option("")
    await expect(show).to_have_value("")
    await expect(view.locator(".consult-error")).to_be_hidden()
    await screenshot(page, "consultation_terminal.png")
    # At the smallest screen the console is made for, nothing scrolls sideways.
    await page.set_viewport_size(LAPTOP)
    await expect(row.locator(".consult-hang-up")).to_be_in_viewport()
    await expect(dial).to_be_in_viewport()
    width, inner = await page.evaluate(OVERFLOW)
    assert width <= inner, f"the page is {width}px wide in a {inner}px window"
    await screenshot(page, "consultation_terminal_1366.png")

    # The dialog now says the terminal is in the room.
    await call_button.click()
    await expect(item.locator(".consult-terminal-dial")).to_be_disabled()
    await expect(item.locator(".consult-terminal-dial")).to_have_text("已在会商中")
    await dialog.locator(".case-close").click()
    await expect(dialog).to_be_hidden()

    # The host hangs it up: the row says 已挂断, its tile goes, baresip sees the call closed.
    await row.locator(".consult-hang-up").click()
    await expect(row.locator(".consult-call")).to_have_text("已挂断")
    await expect(tile).to_have_count(0)
    await terminal.wait_event("CALL_CLOSED", timeout=CALL_WAIT)
    await expect(row.locator(".consult-redial")).to_have_text("重新呼叫")

    # The same view in English.
    await page.locator("#lang-toggle").click()
    await expect(call_button).to_have_text("Call a video-network terminal")
    await expect(dial).to_contain_text("Terminal dial-in number")
    await expect(row.locator(".consult-call")).to_have_text("Hung up")
    await expect(row.locator(".consult-hang-up")).to_have_count(0)
    await expect(row.locator(".consult-redial")).to_have_text("Call again")

    # The refused address is the one failed request the browser logs.
    refused = [e for e in host.errors if "status of 422" in e]
    assert len(refused) == 1, host.errors
    assert [e for e in host.errors if e not in refused] == []
