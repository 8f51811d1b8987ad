"""The end-to-end tests' network guard trips: a page that asks for a host other than the
loopback has the request aborted (nothing reaches the network) and the guard reports it, so
the test would fail at teardown."""

from __future__ import annotations

from playwright.async_api import Browser

from tests.conftest import RunningHub
from tests.e2e.conftest import NetworkGuard, is_local

OUTSIDE = "http://example.invalid/tile.png"


def test_only_loopback_data_and_blob_urls_count_as_local() -> None:
    assert is_local("http://127.0.0.1:8080/api/v1/grids")
    assert is_local("ws://localhost:9/connection/websocket")
    assert is_local("http://[::1]:8080/")
    assert is_local("data:,")
    assert is_local("blob:http://127.0.0.1:8080/1234")
    assert not is_local(OUTSIDE)
    assert not is_local("https://unpkg.com/leaflet.css")
    assert not is_local("http://127.0.0.1.example.com/")


async def test_a_request_to_another_host_is_aborted_and_reported(
    console_hub: RunningHub, browser: Browser, network_guard: NetworkGuard
) -> None:
    page = await browser.new_page()
    await page.goto(f"{console_hub.url}/healthz")
    outcome = await page.evaluate(
        """(url) => fetch(url).then(() => "reached", (err) => `failed: ${err.name}`)""",
        OUTSIDE,
    )
    assert outcome.startswith("failed"), outcome
    # What the guard would fail the test with at teardown; taken here so this one passes.
    assert network_guard.take() == [OUTSIDE]
    assert network_guard.blocked == []
