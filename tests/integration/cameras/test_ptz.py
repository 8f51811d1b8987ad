"""Camera PTZ over REST against a stand-in ONVIF camera speaking SOAP 1.2 on a real socket:
moves, stops and presets reach the camera with the caller's values, only dispatchers,
leaders and admins of the camera's subtree may steer, and a camera that is down, hangs or
rejects the credentials gives a clear error quickly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from adapters.onvif import OnvifEndpoint, PtzPool, PtzTimeouts
from hub.errors import HubError
from tests.conftest import Backend, RunningHub, backend_settings, start_hub
from tests.integration.api.conftest import Api
from tests.integration.cameras.conftest import ADMIN, OTHER_STREET, STREET, WORKER, Person
from tests.support.onvif_camera import FakeOnvifCamera

CAMERAS = "/api/v1/cameras"
CAMERA_ID = "s01c01g02-dome"
ONVIF_USER = "onvif-op"
ONVIF_PASSWORD = "onvif-pa55-Ptz"
CALL_TIMEOUT = 1.0
CONNECT_TIMEOUT = 1.5
LEADER = Person("s01-leader", "d01.s01", ("leader",))


def ptz(path: str, camera_id: str = CAMERA_ID) -> str:
    """A PTZ path of the camera."""
    return f"{CAMERAS}/{camera_id}/ptz/{path}"


def camera_body(fake: FakeOnvifCamera, camera_id: str = CAMERA_ID, **fields: Any) -> dict[str, Any]:
    """A create body: a PTZ camera of grid d01.s01.c01.g02 whose ONVIF is the fake."""
    body: dict[str, Any] = {
        "id": camera_id,
        "name": "二网格球机",
        "org": "d01.s01.c01.g02",
        "source_url": "rtsp://10.0.0.9:554/ch1",
        "ptz": True,
        "onvif_url": fake.device_url,
        "onvif_username": ONVIF_USER,
        "onvif_password": ONVIF_PASSWORD,
    }
    body.update(fields)
    return body


def ptz_settings(backend: Backend, **cameras: Any) -> Any:
    """Test settings with short PTZ timeouts (a dead camera must fail fast)."""
    values = {
        "cameras_file": None,
        "ptz_timeout": CALL_TIMEOUT,
        "ptz_connect_timeout": CONNECT_TIMEOUT,
        **cameras,
    }
    return backend_settings(backend, cameras=values)


@pytest.fixture
async def fake() -> AsyncIterator[FakeOnvifCamera]:
    """The stand-in ONVIF PTZ camera."""
    camera = await FakeOnvifCamera(ONVIF_USER, ONVIF_PASSWORD).start()
    try:
        yield camera
    finally:
        await camera.stop()


@pytest.fixture
async def ptz_hub(sqlite_backend: Backend) -> AsyncIterator[RunningHub]:
    """A hub on SQLite + memory bus with short PTZ timeouts."""
    hub = await start_hub(ptz_settings(sqlite_backend))
    try:
        yield hub
    finally:
        await hub.server.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client."""
    async with aiohttp.ClientSession() as session:
        yield session


def as_(http: aiohttp.ClientSession, hub: RunningHub, person: Person) -> Api:
    """The API as ``person``."""
    return Api(http, hub.url, person.token)


async def register(api: Api, body: dict[str, Any]) -> None:
    """Create a camera (as whoever ``api`` is)."""
    created = await api.post(CAMERAS, body)
    assert created.status == 201, created.body


async def test_moves_stops_and_presets_reach_the_camera_on_both_backends(
    backend: Backend, fake: FakeOnvifCamera, http: aiohttp.ClientSession
) -> None:
    hub = await start_hub(ptz_settings(backend))
    try:
        await register(as_(http, hub, ADMIN), camera_body(fake))
        street = as_(http, hub, STREET)

        move = await street.post(
            ptz("move"), {"pan": 0.5, "tilt": -0.25, "zoom": 0.1, "timeout_s": 2}
        )
        assert move.status == 204, move.body
        call = await fake.wait_for("ContinuousMove")
        assert (call.args["pan"], call.args["tilt"], call.args["zoom"]) == (0.5, -0.25, 0.1)
        assert call.args["Timeout"] == "PT2S"
        # The profile with the PTZ configuration, not the first one.
        assert call.args["ProfileToken"] == "prof_main"

        assert (await street.post(ptz("stop"), None)).status == 204
        stop = await fake.wait_for("Stop")
        assert stop.args["PanTilt"] == "true" and stop.args["Zoom"] == "true"

        presets = await street.get(ptz("presets"))
        assert presets.status == 200, presets.body
        assert presets.body == {
            "items": [{"token": "1", "name": "Gate"}, {"token": "2", "name": "Crossing"}]
        }
        assert (await street.post(ptz("presets/2/goto"), None)).status == 204
        assert (await fake.wait_for("GotoPreset")).args["PresetToken"] == "2"

        # One sign-in served every call: the connection is kept.
        assert fake.operations().count("GetServices") == 1
        assert fake.operations().count("GetProfiles") == 1
        assert fake.auth_failures == 0
    finally:
        await hub.server.close()


async def test_move_velocities_default_to_zero_and_stay_within_range(
    ptz_hub: RunningHub, fake: FakeOnvifCamera, http: aiohttp.ClientSession
) -> None:
    admin = as_(http, ptz_hub, ADMIN)
    await register(admin, camera_body(fake))
    assert (await admin.post(ptz("move"), {"zoom": -1})).status == 204
    call = await fake.wait_for("ContinuousMove")
    assert (call.args["pan"], call.args["tilt"], call.args["zoom"]) == (0.0, 0.0, -1.0)
    assert call.args["Timeout"] == "PT1S"

    for bad in ({"pan": 1.5}, {"tilt": -2}, {"timeout_s": 0}, {"timeout_s": 60}, {"spin": 1}):
        reply = await admin.post(ptz("move"), bad)
        assert (reply.status, reply.code) == (422, "camera.ptz_invalid"), bad
    reply = await admin.call("POST", ptz("move"), data=b"{nope")
    assert (reply.status, reply.code) == (400, "request.invalid_json")
    assert fake.operations().count("ContinuousMove") == 1


async def test_an_unknown_preset_is_a_404(
    ptz_hub: RunningHub, fake: FakeOnvifCamera, http: aiohttp.ClientSession
) -> None:
    admin = as_(http, ptz_hub, ADMIN)
    await register(admin, camera_body(fake))
    reply = await admin.post(ptz("presets/99/goto"), None)
    assert (reply.status, reply.code) == (404, "camera.ptz_preset_not_found")
    reply = await admin.post(ptz(f"presets/{'x' * 65}/goto"), None)
    assert (reply.status, reply.code) == (404, "camera.ptz_preset_not_found")


async def test_only_dispatchers_leaders_and_admins_of_the_subtree_may_steer(
    ptz_hub: RunningHub, fake: FakeOnvifCamera, http: aiohttp.ClientSession
) -> None:
    await register(as_(http, ptz_hub, ADMIN), camera_body(fake))
    worker = as_(http, ptz_hub, WORKER)
    outsider = as_(http, ptz_hub, OTHER_STREET)
    for method, path in [("POST", "move"), ("POST", "stop"), ("GET", "presets"),
                         ("POST", "presets/1/goto")]:  # fmt: skip
        body = {"pan": 0.1} if path == "move" else None
        reply = await worker.call(method, ptz(path), json=body)
        assert (reply.status, reply.code) == (403, "auth.forbidden"), path
        reply = await outsider.call(method, ptz(path), json=body)
        assert (reply.status, reply.code) == (404, "camera.not_found"), path
        reply = await outsider.call(method, ptz(path, "no-such-camera"), json=body)
        assert (reply.status, reply.code) == (404, "camera.not_found"), path
        reply = await Api(http, ptz_hub.url, None).call(method, ptz(path), json=body)
        assert (reply.status, reply.code) == (401, "auth.required"), path
    assert fake.calls == []
    leader = as_(http, ptz_hub, LEADER)
    assert (await leader.post(ptz("move"), {"pan": -0.3})).status == 204
    assert (await fake.wait_for("ContinuousMove")).args["pan"] == -0.3


async def test_a_camera_without_ptz_answers_409(
    ptz_hub: RunningHub, fake: FakeOnvifCamera, http: aiohttp.ClientSession
) -> None:
    admin = as_(http, ptz_hub, ADMIN)
    await register(admin, camera_body(fake, ptz=False))
    reply = await admin.post(ptz("move"), {"pan": 0.2})
    assert (reply.status, reply.code) == (409, "camera.ptz_unsupported")
    assert fake.calls == []

    # Registered as PTZ, but the camera's ONVIF offers no PTZ service or profile.
    fixed = FakeOnvifCamera(ONVIF_USER, ONVIF_PASSWORD, ptz_capable=False)
    await fixed.start()
    try:
        await register(admin, camera_body(fixed, "s01c01g02-fixed"))
        reply = await admin.get(ptz("presets", "s01c01g02-fixed"))
        assert (reply.status, reply.code) == (409, "camera.ptz_unsupported")
    finally:
        await fixed.stop()


async def test_wrong_credentials_say_so_and_a_fix_takes_effect(
    ptz_hub: RunningHub, fake: FakeOnvifCamera, http: aiohttp.ClientSession
) -> None:
    admin = as_(http, ptz_hub, ADMIN)
    await register(admin, camera_body(fake, onvif_password="wrong"))
    reply = await admin.post(ptz("move"), {"pan": 0.2})
    assert (reply.status, reply.code) == (502, "camera.ptz_auth_failed")
    assert "credentials" in reply.body["error"]["message"]
    assert fake.auth_failures > 0 and fake.calls == []
    assert "wrong" not in str(reply.body)

    fixed = await admin.patch(f"{CAMERAS}/{CAMERA_ID}", {"onvif_password": ONVIF_PASSWORD})
    assert fixed.status == 200, fixed.body
    assert (await admin.post(ptz("move"), {"pan": 0.2})).status == 204
    assert (await fake.wait_for("ContinuousMove")).args["pan"] == 0.2


async def test_a_camera_that_is_down_or_hangs_fails_fast_and_recovers(
    ptz_hub: RunningHub, fake: FakeOnvifCamera, http: aiohttp.ClientSession
) -> None:
    admin = as_(http, ptz_hub, ADMIN)
    await register(admin, camera_body(fake))
    assert (await admin.post(ptz("stop"), None)).status == 204

    await fake.stop()
    started = time.monotonic()
    reply = await admin.post(ptz("move"), {"pan": 0.2})
    assert (reply.status, reply.code) == (503, "camera.ptz_unavailable")
    assert time.monotonic() - started < CONNECT_TIMEOUT + CALL_TIMEOUT

    fake.hang = True
    await fake.start()  # same port: the camera is back but does not answer
    started = time.monotonic()
    reply = await admin.get(ptz("presets"))
    assert (reply.status, reply.code) == (503, "camera.ptz_unavailable")
    assert time.monotonic() - started < CONNECT_TIMEOUT + CALL_TIMEOUT + 1
    await fake.stop()

    fake.hang = False
    await fake.start()
    reply = await admin.get(ptz("presets"))
    assert reply.status == 200, reply.body
    assert len(reply.body["items"]) == 2


async def test_held_moves_are_rate_limited_but_stop_always_goes_through(
    sqlite_backend: Backend, fake: FakeOnvifCamera, http: aiohttp.ClientSession
) -> None:
    hub = await start_hub(ptz_settings(sqlite_backend, ptz_max_moves_per_second=3))
    try:
        admin = as_(http, hub, ADMIN)
        await register(admin, camera_body(fake))
        assert (await admin.post(ptz("stop"), None)).status == 204  # signed in
        replies = [await admin.post(ptz("move"), {"pan": 0.5}) for _ in range(8)]
        statuses = [r.status for r in replies]
        assert 429 in statuses and statuses[0] == 204
        assert {r.code for r in replies if r.status == 429} == {"camera.ptz_rate_limited"}
        assert fake.operations().count("ContinuousMove") == statuses.count(204)
        assert (await admin.post(ptz("stop"), None)).status == 204
    finally:
        await hub.server.close()


async def test_connections_close_when_the_hub_stops(
    sqlite_backend: Backend, fake: FakeOnvifCamera, http: aiohttp.ClientSession
) -> None:
    hub = await start_hub(ptz_settings(sqlite_backend))
    pool = hub.hub.ptz
    assert pool is not None
    try:
        await register(as_(http, hub, ADMIN), camera_body(fake))
        assert (await as_(http, hub, ADMIN).post(ptz("stop"), None)).status == 204
        assert len(pool) == 1
    finally:
        await hub.server.close()
    assert len(pool) == 0


async def test_the_onvif_url_is_validated_and_shown_but_credentials_are_not(
    ptz_hub: RunningHub, fake: FakeOnvifCamera, http: aiohttp.ClientSession
) -> None:
    admin = as_(http, ptz_hub, ADMIN)
    for bad in ("ftp://10.0.0.9/", "http:///onvif/device_service", "http://10.0.0.9/other"):
        reply = await admin.post(CAMERAS, camera_body(fake, onvif_url=bad))
        assert (reply.status, reply.code) == (422, "camera.invalid"), bad
    await register(admin, camera_body(fake))
    camera = (await admin.get(f"{CAMERAS}/{CAMERA_ID}")).body
    assert camera["onvif_url"] == fake.device_url and camera["has_credentials"] is True
    assert ONVIF_PASSWORD not in str(camera)


def test_the_onvif_endpoint_defaults_to_the_stream_host_on_port_80() -> None:
    derived = OnvifEndpoint.of(None, "rtsp://u:p@10.1.2.3:554/ch1", "op", "pw")
    assert derived.device_url == "http://10.1.2.3:80/onvif/device_service"
    given = OnvifEndpoint.of(
        "https://cam.example:8443/onvif/device_service", "rtsp://x/", None, None
    )
    assert given.device_url == "https://cam.example:8443/onvif/device_service"
    assert "pw" not in repr(derived)
    with pytest.raises(HubError) as err:
        OnvifEndpoint.of(None, "file:///var/clip.mp4", None, None)
    assert err.value.code == "camera.ptz_unsupported"


def test_the_move_rate_refills_over_time() -> None:
    now = [0.0]
    pool = PtzPool(PtzTimeouts(1, 1), ttl=60, max_moves_per_second=2, clock=lambda: now[0])
    pool.take_move("cam")
    pool.take_move("cam")
    with pytest.raises(HubError) as err:
        pool.take_move("cam")
    assert (err.value.code, err.value.status) == ("camera.ptz_rate_limited", 429)
    pool.take_move("other")  # per camera
    now[0] = 0.5
    pool.take_move("cam")


async def test_a_closed_pool_refuses_new_work(fake: FakeOnvifCamera) -> None:
    pool = PtzPool(PtzTimeouts(CONNECT_TIMEOUT, CALL_TIMEOUT), ttl=60, max_moves_per_second=10)
    endpoint = OnvifEndpoint.of(fake.device_url, "rtsp://x/", ONVIF_USER, ONVIF_PASSWORD)

    async def presets(client: Any) -> Any:
        return await client.presets()

    assert len(await pool.run("cam", endpoint, presets)) == 2
    await pool.close()
    with pytest.raises(HubError) as err:
        await pool.run("cam", endpoint, presets)
    assert err.value.code == "camera.ptz_unavailable"
    await asyncio.wait_for(pool.close(), 1)  # twice is fine
