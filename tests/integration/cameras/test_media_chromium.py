"""A real browser plays the camera: headless Chromium does WHEP against the hub and decodes
the camera's H.264 High stream, passed through in its own profile."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import async_playwright

from tests.conftest import RunningHub
from tests.integration.cameras.conftest import GATE, STREET
from tests.support.rtsp_server import HEIGHT, WIDTH, RtspServer

CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
FRAMES = 25

WATCH = """
async ({token, camera}) => {
  const pc = new RTCPeerConnection();
  pc.addTransceiver('video', {direction: 'recvonly'});
  const video = document.createElement('video');
  video.muted = true; video.autoplay = true; video.playsInline = true;
  document.body.appendChild(video);
  pc.ontrack = (e) => { video.srcObject = new MediaStream([e.track]); };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') resolve();
    });
  });
  const resp = await fetch(`/api/v1/cameras/${camera}/whep`, {
    method: 'POST',
    headers: {'Content-Type': 'application/sdp', 'Authorization': 'Bearer ' + token},
    body: pc.localDescription.sdp,
  });
  const answer = await resp.text();
  if (resp.status !== 201) return {status: resp.status, body: answer};
  await pc.setRemoteDescription({type: 'answer', sdp: answer});
  window.__pc = pc; window.__video = video;
  return {status: 201, answer, offer: pc.localDescription.sdp};
}
"""

STATS = """
async () => {
  const out = {width: window.__video.videoWidth, height: window.__video.videoHeight};
  const stats = await window.__pc.getStats();
  stats.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') {
      out.framesDecoded = s.framesDecoded; out.codecId = s.codecId;
      out.decoder = s.decoderImplementation;
    }
  });
  stats.forEach((s) => {
    if (s.type === 'codec' && s.id === out.codecId) {
      out.mimeType = s.mimeType; out.fmtp = s.sdpFmtpLine;
    }
  });
  return out;
}
"""


@pytest.fixture
def chromium() -> str:
    """Debian's Chromium; the test fails (never skips) without it."""
    if not os.access(CHROMIUM, os.X_OK) or not Path(CHROMIUM).is_file():
        pytest.fail(f"Chromium not found at {CHROMIUM}: run `bash .ci/ensure-chromium`")
    return CHROMIUM


async def test_chromium_plays_the_camera_in_its_high_profile(
    media_hub: RunningHub, camera: RtspServer, chromium: str
) -> None:
    streams = media_hub.hub.streams
    assert streams is not None
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium,
            args=[
                "--disable-dev-shm-usage",
                # host candidates as IP addresses, not mDNS names aiortc would have to resolve
                "--disable-features=WebRtcHideLocalIpsWithMdns",
            ],
        )
        try:
            page = await browser.new_page()
            await page.goto(f"{media_hub.url}/healthz")
            result: dict[str, Any] = await page.evaluate(
                WATCH, {"token": STREET.token, "camera": GATE}
            )
            assert result["status"] == 201, result
            # Chromium offers High as f4001f (High 4:4:4 Predictive decoders play High).
            assert re.search(r"profile-level-id=(64|f4)", result["answer"]), result["answer"]
            stats: dict[str, Any] = {}
            async with asyncio.timeout(20):
                while not (stats.get("framesDecoded") or 0) >= FRAMES or not stats["width"]:
                    await asyncio.sleep(0.2)
                    stats = await page.evaluate(STATS)
            print(f"\nChromium: {stats}")
            assert stats["mimeType"].lower() == "video/h264"
            assert re.search(r"profile-level-id=(64|f4)", stats["fmtp"]), stats
            assert (stats["width"], stats["height"]) == (WIDTH, HEIGHT)
            await page.evaluate("() => window.__pc.close()")
        finally:
            await browser.close()
    assert streams.counters.frames_decoded == 0
    assert streams.counters.frames_encoded == 0
