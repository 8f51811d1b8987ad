"""Remote video consultations (远程会商) in two real browsers with fake cameras and
microphones: a street dispatcher opens a room inviting a community grid leader, who sees the
invitation pop up and accepts; both join over one peer connection each (H.264 constrained
baseline and Opus through the hub's media plane), and each sees the other's video play in a
tile. The host mutes the guest's audio: both consoles show the muted badge. The host ends the
room: both consoles show it ended and their peer connections are closed. No request leaves
the machine (the e2e guard) and no page logs an error."""

from __future__ import annotations

from playwright.async_api import Browser, Locator, Page, expect

from tests.conftest import RunningHub
from tests.e2e.conftest import Console, screenshot
from tests.support.hubs import token

HOST = "s01-dispatcher"
GUEST = "s01c01-leader"
HOST_TOKEN = token(HOST, "d01.s01", ["dispatcher"])
GUEST_TOKEN = token(GUEST, "d01.s01.c01", ["grid_leader"])
TITLE = "钢花新村积水会商"
MEDIA_TIMEOUT_MS = 30_000
"""Getting media going: capture, ICE and DTLS with the hub, the first keyframe relayed."""
PLAYED_SECONDS = 0.5
"""How far a tile's video must play on after it is first seen playing."""

RECORD_PEER_CONNECTIONS = """
(() => {
  const Native = window.RTCPeerConnection;
  window.__peerConnections = [];
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      window.__peerConnections.push(this);
    }
  };
})();
"""
"""Keeps every RTCPeerConnection the page makes, for the test to read its state."""

VIDEO_TIME = """
(source) => {
  const video = document.querySelector(`.consult-tile[data-source="${source}"] video`);
  return video !== null && video.videoWidth > 0 && !video.paused ? video.currentTime : null;
}
"""

PLAYED_PAST = """
([source, seconds]) => {
  const video = document.querySelector(`.consult-tile[data-source="${source}"] video`);
  return video !== null && video.videoWidth > 0 && video.currentTime > seconds;
}
"""

VIDEO_CODECS = """
async () => {
  const stats = await window.__peerConnections[0].getStats();
  const codecs = new Map();
  const used = [];
  stats.forEach((s) => { if (s.type === "codec") codecs.set(s.id, s.mimeType); });
  stats.forEach((s) => {
    if ((s.type === "inbound-rtp" || s.type === "outbound-rtp") && s.kind === "video" && s.codecId)
      used.push(codecs.get(s.codecId));
  });
  return [...new Set(used)];
}
"""
"""The video codecs the page's peer connection sends and receives with."""

CONNECTION_STATES = "() => window.__peerConnections.map((pc) => pc.connectionState)"


async def open_console(browser: Browser, hub: RunningHub, bearer: str) -> Console:
    """The console signed in with ``bearer``, subscribed to its live channels; its console
    errors are counted with its script errors."""
    context = await browser.new_context(viewport={"width": 1440, "height": 900})
    await context.add_init_script(RECORD_PEER_CONNECTIONS)
    page = await context.new_page()
    console = Console(page)
    page.on("pageerror", lambda err: console.errors.append(str(err)))
    page.on("console", lambda m: console.errors.append(m.text) if m.type == "error" else None)
    await page.goto(f"{hub.url}/?token={bearer}")
    try:
        await expect(page.locator("body")).to_have_attribute("data-subscription", "subscribed")
    except AssertionError as err:
        raise AssertionError(f"console did not start; its errors: {console.errors}") from err
    return console


def room(page: Page) -> Locator:
    """The room view."""
    return page.locator("#consult-room .consult-room")


def tile(page: Page, source: str) -> Locator:
    """The tile playing ``source``."""
    return page.locator(f'#consult-room .consult-tile[data-source="{source}"]')


async def plays(page: Page, source: str) -> None:
    """Until ``source``'s tile shows video whose time keeps advancing."""
    first = await page.wait_for_function(VIDEO_TIME, arg=source, timeout=MEDIA_TIMEOUT_MS)
    seen = float(await first.json_value())
    await page.wait_for_function(
        PLAYED_PAST, arg=[source, seen + PLAYED_SECONDS], timeout=MEDIA_TIMEOUT_MS
    )


async def test_host_and_guest_see_each_other_mute_shows_on_both_and_ending_closes_both(
    consultation_hub: RunningHub, camera_browser: Browser
) -> None:
    hub = consultation_hub
    host = await open_console(camera_browser, hub, HOST_TOKEN)
    guest = await open_console(camera_browser, hub, GUEST_TOKEN)

    # The host opens a room inviting the grid leader, and is taken into it.
    await host.page.locator("#tab-consultations").click()
    await host.page.locator("#consult-create-open").click()
    form = host.page.locator("#consult-create form")
    await form.locator('input[name="title"]').fill(TITLE)
    invitee = form.locator(f'input[data-pick="user"][value="{GUEST}"]')
    await invitee.check()
    await form.locator(".consult-create-submit").click()
    await expect(host.page.locator("#consult-create")).to_be_hidden()
    await expect(room(host.page)).to_have_attribute(
        "data-state", "joined", timeout=MEDIA_TIMEOUT_MS
    )
    await expect(host.page.locator("#consult-list .consult-item")).to_have_count(1)
    consultation_id = await room(host.page).get_attribute("data-consultation-id")
    assert consultation_id

    # The grid leader gets the invitation card, accepts and is taken into the room.
    card = guest.page.locator(
        f'#consult-invites .consult-invite[data-consultation-id="{consultation_id}"]'
    )
    await expect(card).to_be_visible()
    await expect(card).to_contain_text(TITLE)
    await expect(card).to_contain_text("赵军")
    await card.locator(".consult-accept").click()
    await expect(card).to_have_count(0)
    await expect(room(guest.page)).to_have_attribute(
        "data-state", "joined", timeout=MEDIA_TIMEOUT_MS
    )

    # Each sees the other's camera play, named.
    await plays(host.page, GUEST)
    await plays(guest.page, HOST)
    await expect(tile(host.page, GUEST)).to_contain_text("周华")
    await expect(tile(guest.page, HOST)).to_contain_text("赵军")
    await expect(room(host.page)).to_have_attribute("data-pc-state", "connected")
    for console in (host, guest):
        assert await console.page.evaluate(VIDEO_CODECS) == ["video/H264"]
    await screenshot(host.page, "consultation_host.png")
    await screenshot(guest.page, "consultation_guest.png")

    # The host mutes the guest's microphone: the badge shows on both consoles.
    guest_row = host.page.locator(f'.consult-participants li[data-participant-id="{GUEST}"]')
    await guest_row.locator(".consult-mute-audio").click()
    await expect(tile(host.page, GUEST).locator(".consult-muted-audio")).to_be_visible()
    await expect(guest.page.locator(".consult-preview .consult-muted-audio")).to_be_visible()
    await expect(guest.page.locator(".consult-mic")).to_have_attribute("aria-pressed", "true")

    # The host ends the room: both show it ended, their peer connections closed.
    await host.page.locator(".consult-end").click()
    for console in (host, guest):
        await expect(room(console.page)).to_have_attribute("data-state", "ended")
        await expect(room(console.page).locator(".consult-status")).to_have_text("会商已结束")
        states = await console.page.evaluate(CONNECTION_STATES)
        assert states and set(states) == {"closed"}, states
        await expect(
            console.page.locator("#consult-room .consult-tile:not(.consult-preview)")
        ).to_have_count(0)

    for console in (host, guest):
        assert console.errors == []
