"""The console in a real browser: a community dispatcher signs in with ``?token=``, sees the
grid polygons of their community, watches a grid worker's phone come online and move (pings
fed through the hub's location service, as the MQTT adapter hands them over), reads the feed
in Chinese and in English; a dispatcher of the sibling community never sees that worker; an
expired or forged token sends the user back to the sign-in form with the reason."""

from __future__ import annotations

import time

import jwt
from playwright.async_api import Browser, Page, expect

from hub.db.models import Worker
from protocols.envelope import org_contains
from tests.conftest import RunningHub
from tests.e2e.conftest import Console, open_console
from tests.support.hubs import token
from tests.support.phones import inside, location

COMMUNITY = "d01.s01.c01"
SIBLING = "d01.s01.c02"
GRID = "d01.s01.c01.g01"
WORKER = "s01c01g01-worker"
SIBLING_WORKER = "s01c02g01-worker"
DISPATCHER = token("s01c01-dispatcher", COMMUNITY, ["dispatcher"])
SIBLING_DISPATCHER = token("s01c02-dispatcher", SIBLING, ["dispatcher"])
FORGERS_SECRET = "a-secret-that-is-not-the-hubs-0123456789abcdef"


def grids_of(hub: RunningHub, root: str) -> set[str]:
    """Paths of the grid-level polygons in ``root``'s subtree."""
    grids = hub.hub.locations.registry.grids
    return {p for p in grids.paths if org_contains(root, p) and grids.area(p).level == "grid"}


async def worker_name(hub: RunningHub, worker_id: str) -> str:
    """The worker's name in the registry."""
    async with hub.hub.sessions() as session:
        worker = await session.get(Worker, worker_id)
    assert worker is not None
    return worker.name


async def subscribed(page: Page) -> None:
    """Wait until the console is subscribed to its org channel (pings sent before would
    only reach it through the positions API)."""
    await expect(page.locator("body")).to_have_attribute("data-subscription", "subscribed")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "connected")


async def drawn_paths(page: Page) -> set[str]:
    """Org paths of the grid polygons drawn on the map."""
    paths = await page.locator("#map path.level-grid").evaluate_all(
        "els => els.map(e => e.dataset.path)"
    )
    return set(paths)


async def dot_inside(page: Page, worker_id: str, path: str) -> bool:
    """True when the worker's dot centre lies inside the drawn polygon of ``path``."""
    return bool(
        await page.evaluate(
            """([id, path]) => {
                const dot = document.querySelector(`#map circle[data-worker-id="${id}"]`);
                const area = document.querySelector(`#map path[data-path="${path}"]`);
                const point = new DOMPoint(+dot.getAttribute("cx"), +dot.getAttribute("cy"));
                return area.isPointInFill(point);
            }""",
            [worker_id, path],
        )
    )


def no_script_errors(*consoles: Console) -> None:
    """No page raised an uncaught error."""
    for console in consoles:
        assert console.errors == [], console.errors


async def test_community_dispatcher_sees_their_grids_and_a_worker_come_online_and_move(
    console_hub: RunningHub, browser: Browser
) -> None:
    hub = console_hub
    console = await open_console(browser, hub, DISPATCHER)
    page = console.page

    # Signed in from the URL: the token left the address bar for sessionStorage.
    assert "token=" not in page.url
    await expect(page.locator("#user-roles")).to_contain_text("调度员")
    await expect(page.locator("#feed-channel")).to_have_text(f"org:{COMMUNITY}")

    community = grids_of(hub, COMMUNITY)
    assert len(community) == 4
    await expect(page.locator("#map path.level-grid")).to_have_count(len(community))
    assert await drawn_paths(page) == community
    await subscribed(page)

    dot = page.locator(f'#map circle[data-worker-id="{WORKER}"]')
    row = page.locator(f'#workers tr[data-worker-id="{WORKER}"]')
    online = page.locator('#feed li[data-type="worker.online"]')
    await expect(dot).to_have_count(0)

    start = time.time() - 10
    await hub.hub.locations.ingest([location(WORKER, inside(hub.hub, GRID), start)])

    await expect(dot).to_be_visible()
    await expect(dot).to_have_class("worker-dot status-online")
    assert await dot_inside(page, WORKER, GRID)
    await expect(row).to_contain_text(await worker_name(hub, WORKER))
    await expect(row).to_contain_text("在线")
    await expect(online).to_have_count(1)
    await expect(online).to_contain_text("上线")

    before = await dot.get_attribute("cx")
    later = inside(hub.hub, GRID, fx=0.3, fy=0.6)
    await hub.hub.locations.ingest([location(WORKER, later, start + 5)])
    await expect(dot).not_to_have_attribute("cx", before or "")
    assert await dot_inside(page, WORKER, GRID)
    # Live positions move dots; they are not feed rows.
    await expect(page.locator('#feed li[data-type="worker.position"]')).to_have_count(0)
    await expect(online).to_have_count(1)

    await page.click("#lang-toggle")
    await expect(online.locator(".feed-label")).to_have_text("Online")
    await expect(page.locator("#map-title")).to_have_text("Grid workers, live")
    await expect(row).to_contain_text("Online")
    assert await page.evaluate("localStorage.getItem('lang')") == "en"
    no_script_errors(console)


async def test_dispatcher_of_the_sibling_community_never_sees_the_worker(
    console_hub: RunningHub, browser: Browser
) -> None:
    hub = console_hub
    mine = await open_console(browser, hub, DISPATCHER)
    sibling = await open_console(browser, hub, SIBLING_DISPATCHER)
    await expect(sibling.page.locator("#map path.level-grid")).to_have_count(4)
    assert await drawn_paths(sibling.page) == grids_of(hub, SIBLING)
    await subscribed(mine.page)
    await subscribed(sibling.page)

    now = time.time() - 10
    await hub.hub.locations.ingest([location(WORKER, inside(hub.hub, GRID), now)])
    await expect(mine.page.locator(f'#map circle[data-worker-id="{WORKER}"]')).to_be_visible()
    # The sibling's own worker goes online after ours: once the sibling sees it, it would
    # have seen ours too had it leaked.
    await hub.hub.locations.ingest(
        [location(SIBLING_WORKER, inside(hub.hub, f"{SIBLING}.g01"), now + 1)]
    )
    page = sibling.page
    await expect(page.locator(f'#map circle[data-worker-id="{SIBLING_WORKER}"]')).to_be_visible()
    await expect(page.locator('#feed li[data-type="worker.online"]')).to_have_count(1)
    await expect(page.locator(f'[data-worker-id="{WORKER}"]')).to_have_count(0)
    await expect(page.locator("#feed")).not_to_contain_text(await worker_name(hub, WORKER))

    # The positions API agrees after a reload (the token survives it in sessionStorage).
    await page.reload()
    await subscribed(page)
    await expect(page.locator(f'#workers tr[data-worker-id="{SIBLING_WORKER}"]')).to_be_visible()
    await expect(page.locator(f'[data-worker-id="{WORKER}"]')).to_have_count(0)
    no_script_errors(mine, sibling)


async def test_an_expired_or_forged_token_asks_to_sign_in_again(
    console_hub: RunningHub, browser: Browser
) -> None:
    expired = await open_console(
        browser, console_hub, token("s01c01-dispatcher", COMMUNITY, ["dispatcher"], ttl=-60)
    )
    await expect(expired.page.locator("#signin-error")).to_have_text("登录已过期，请重新登录")
    await expect(expired.page.locator("#console-view")).to_be_hidden()

    claims = {"sub": "intruder", "org": "d01", "roles": ["admin"], "exp": int(time.time()) + 600}
    forged = await open_console(browser, console_hub, jwt.encode(claims, FORGERS_SECRET))
    page = forged.page
    await expect(page.locator("#signin-error")).to_have_text("令牌无效，请重新登录")
    await expect(page.locator("#console-view")).to_be_hidden()
    assert await page.evaluate("sessionStorage.length") == 0
    await page.click("#lang-toggle")
    await expect(page.locator("#signin-error")).to_have_text("Invalid token: sign in again")
    no_script_errors(expired, forged)
