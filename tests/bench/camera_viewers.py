"""Viewer process of the camera benchmark: N aiortc WHEP viewers of one camera.

    python -m tests.bench.camera_viewers URL TOKEN CAMERA N [--query ?transcode=1]

Every viewer runs aiortc's whole receive path (ICE, DTLS, SRTP, RTP depacketising, jitter
buffer, NACK/PLI) but only the first one decodes: N libavcodec decoders of 720p would need
more CPU than the benchmark machine has, and the frames they hand over are the same. The
others count the whole encoded frames aiortc assembles for its decoder. Prints one line per
second: ``STATUS <connected> <min frames per viewer> <total frames> <decoded frames>``, and
``ERROR <text>`` when a viewer cannot connect. Exits when its stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import queue
import sys
import threading
from typing import Any

import aiohttp
import aiortc.rtcrtpreceiver as receiver_module
from aiortc import RTCPeerConnection, RTCSessionDescription

from tests.bench.procutil import die_with_parent, raise_nofile_limit

CONNECT_TIMEOUT = 30.0
STATUS_INTERVAL = 1.0
_original_worker = receiver_module.decoder_worker
_counts: list[int] = []
_decoded = [0]
_lock = threading.Lock()


def _counting_worker(
    loop: asyncio.AbstractEventLoop,
    input_q: queue.Queue[Any],
    output_q: asyncio.Queue[Any],
    *args: Any,
) -> None:
    """aiortc's decoder thread: the first receiver decodes (and counts), the rest count."""
    with _lock:
        index = len(_counts)
        _counts.append(0)
    if index == 0:
        relay: queue.Queue[Any] = queue.Queue()

        def decode() -> None:
            _original_worker(loop, relay, output_q, *args)

        thread = threading.Thread(target=decode, daemon=True)
        thread.start()
    while True:
        task = input_q.get()
        if index == 0:
            relay.put(task)
        if task is None:
            asyncio.run_coroutine_threadsafe(output_q.put(None), loop)
            return
        _counts[index] += 1


receiver_module.decoder_worker = _counting_worker  # type: ignore[assignment]


def baseline_as_high(sdp: str) -> str:
    """Offer High as browsers do (aiortc's own decoder plays it)."""
    return sdp.replace("profile-level-id=42e01f", "profile-level-id=640028")


def answer_as_baseline(sdp: str) -> str:
    """Show aiortc the answer with the baseline profile it offered."""
    import re

    return re.sub(r"profile-level-id=[0-9a-fA-F]{6}", "profile-level-id=42e01f", sdp)


async def connect(
    http: aiohttp.ClientSession, url: str, token: str, pcs: list[RTCPeerConnection]
) -> str:
    """One viewer; the media path the hub reports."""
    pc = RTCPeerConnection()
    pcs.append(pc)
    transceiver = pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    assert pc.localDescription is not None
    async with http.post(
        url,
        data=baseline_as_high(pc.localDescription.sdp),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/sdp"},
    ) as resp:
        body = await resp.text()
        if resp.status != 201:
            raise RuntimeError(f"WHEP POST {resp.status}: {body[:200]}")
        path = resp.headers.get("X-Hub-Media-Path", "?")
    await pc.setRemoteDescription(RTCSessionDescription(answer_as_baseline(body), "answer"))
    track = transceiver.receiver.track

    async def drain() -> None:
        while True:
            await track.recv()
            _decoded[0] += 1

    pc.__dict__["_drain"] = asyncio.get_running_loop().create_task(drain())
    return path


async def main(args: argparse.Namespace) -> None:
    """Connect the viewers, report once a second until stdin closes."""
    url = f"{args.url}/api/v1/cameras/{args.camera}/whep{args.query}"
    pcs: list[RTCPeerConnection] = []
    loop = asyncio.get_running_loop()
    stdin_closed = loop.run_in_executor(None, sys.stdin.read)
    async with aiohttp.ClientSession() as http:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                paths = await asyncio.gather(
                    *(connect(http, url, args.token, pcs) for _ in range(args.viewers))
                )
            print(f"PATHS {','.join(sorted(set(paths)))}", flush=True)
        except Exception as err:  # report, the orchestrator decides
            print(f"ERROR {type(err).__name__}: {err}", flush=True)
        while not stdin_closed.done():
            counts = list(_counts)
            connected = sum(1 for pc in pcs if pc.connectionState == "connected")
            print(
                f"STATUS {connected} {min(counts) if len(counts) == args.viewers else 0} "
                f"{sum(counts)} {_decoded[0]}",
                flush=True,
            )
            await asyncio.wait([stdin_closed], timeout=STATUS_INTERVAL)
    await asyncio.gather(*(pc.close() for pc in pcs), return_exceptions=True)


if __name__ == "__main__":
    die_with_parent()
    raise_nofile_limit()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("token")
    parser.add_argument("camera")
    parser.add_argument("viewers", type=int)
    parser.add_argument("--query", default="")
    asyncio.run(main(parser.parse_args()))
