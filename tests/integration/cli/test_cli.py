"""The ``hub`` command: tokens it mints work, ``hub tail`` prints live events."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import jwt
import pytest

from tests.conftest import RunningHub
from tests.support.clients import alert, post_event
from tests.support.hubs import REPO, TEST_SECRET
from tests.support.rawws import eventually

pytestmark = pytest.mark.timeout(60)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env["HUB_JWT_SECRET"] = TEST_SECRET
    return env


async def _hub(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hub",
        *args,
        env=_env(),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_hub_token_mints_a_token_with_the_requested_claims() -> None:
    proc = await _hub(
        "token", "--user", "s01-dispatcher", "--org", "d01.s01", "--roles", "dispatcher"
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err
    claims = jwt.decode(out.decode().strip(), TEST_SECRET, algorithms=["HS256"])
    assert claims["sub"] == "s01-dispatcher"
    assert claims["org"] == "d01.s01"
    assert claims["roles"] == ["dispatcher"]
    assert claims["exp"] > claims["iat"]


async def test_hub_token_refuses_an_unknown_role() -> None:
    proc = await _hub("token", "--user", "x", "--org", "d01", "--roles", "superuser")
    _, err = await proc.communicate()
    assert proc.returncode == 2
    assert b"unknown roles: superuser" in err


async def test_hub_tail_prints_live_events_of_a_channel(sqlite_hub: RunningHub) -> None:
    proc = await _hub("tail", "--channel", "org:d01.s03", "--url", sqlite_hub.url, "--count", "2")
    try:
        # The tail is subscribed once the channel has a local subscriber on the hub.
        node = sqlite_hub.hub.gateway.node
        await eventually(lambda: "org:d01.s03" in node.channels, "hub tail has subscribed")
        ids = []
        for title in ("路灯不亮", "占道经营"):
            status, body = await post_event(sqlite_hub.url, alert("d01.s03.c01", title))
            assert status == 202
            ids.append(body["id"])
        assert proc.stdout is not None
        async with asyncio.timeout(20):
            lines = [await proc.stdout.readline() for _ in ids]
        events = [json.loads(line) for line in lines]
        assert [e["id"] for e in events] == ids
        assert [e["data"]["title"] for e in events] == ["路灯不亮", "占道经营"]
        async with asyncio.timeout(20):
            assert await proc.wait() == 0  # --count 2 reached
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
