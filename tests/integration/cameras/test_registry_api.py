"""The camera registry over REST on both backends: seeded from config without undoing
API edits, CRUD inside the caller's subtree, nothing outside it, and ONVIF credentials
(or a password inside a stream URL) never in any response."""

from __future__ import annotations

from typing import Any

from hub.cameras.seed import read_cameras, seed_cameras
from tests.conftest import RunningHub
from tests.integration.api.conftest import Api, Reply
from tests.integration.cameras.conftest import ADMIN, GATE, OTHER_STREET, SCHOOL, STREET, WORKER

CAMERAS = "/api/v1/cameras"
ONVIF_SECRET = "onvif-pa55-Zq7"
URL_SECRET = "rtsp-pa55-Kx9"


def new_camera(camera_id: str = "s01c01g02-lane", **fields: Any) -> dict[str, Any]:
    """A create body for a camera in grid d01.s01.c01.g02."""
    body: dict[str, Any] = {
        "id": camera_id,
        "name": "青和居二网格巷口",
        "org": "d01.s01.c01.g02",
        "lat": 30.654,
        "lon": 114.381,
        "source_url": f"rtsp://viewer:{URL_SECRET}@10.0.0.7:554/ch1",
        "tags": ["lane", "night"],
        "ptz": True,
        "onvif_username": "onvif-admin",
        "onvif_password": ONVIF_SECRET,
    }
    body.update(fields)
    return body


def ids(reply: Reply) -> list[str]:
    """The camera ids of a list reply."""
    assert reply.status == 200, reply.body
    return [item["id"] for item in reply.body["items"]]


async def test_seed_creates_config_cameras_and_keeps_api_edits(
    running_hub: RunningHub, api: Api
) -> None:
    hub = running_hub.hub
    path = hub.settings.cameras.cameras_file
    assert path is not None
    seeded = sorted(c.id for c in read_cameras(path))
    admin = api.as_(ADMIN.token)
    assert sorted(ids(await admin.get(CAMERAS, limit="500"))) == seeded
    gate = (await admin.get(f"{CAMERAS}/{GATE}")).body
    assert gate["org"] == "d01.s01.c01.g01" and gate["status"] == "unknown"
    assert gate["has_credentials"] is False

    renamed = await admin.patch(f"{CAMERAS}/{GATE}", {"name": "东门（已改名）"})
    assert renamed.status == 200, renamed.body
    assert (await admin.delete(f"{CAMERAS}/{SCHOOL}")).status == 204
    # A restart's seed: the edited camera stays edited, the missing one comes back.
    assert await seed_cameras(hub.sessions, path) == 1
    assert (await admin.get(f"{CAMERAS}/{GATE}")).body["name"] == "东门（已改名）"
    assert (await admin.get(f"{CAMERAS}/{SCHOOL}")).status == 200


async def test_street_dispatcher_manages_cameras_without_ever_seeing_credentials(
    api: Api,
) -> None:
    street = api.as_(STREET.token)
    replies: list[Reply] = []

    created = await street.post(CAMERAS, new_camera())
    replies.append(created)
    assert created.status == 201, created.body
    assert created.headers["Location"] == f"{CAMERAS}/s01c01g02-lane"
    camera = created.body
    assert camera["has_credentials"] is True
    assert camera["source_url"] == "rtsp://viewer:***@10.0.0.7:554/ch1"
    assert camera["tags"] == ["lane", "night"] and camera["ptz"] is True
    assert "onvif_password" not in camera and "onvif_username" not in camera

    replies.append(got := await street.get(f"{CAMERAS}/s01c01g02-lane"))
    assert got.status == 200 and got.body == camera
    replies.append(by_tag := await street.get(CAMERAS, tag="night"))
    assert ids(by_tag) == ["s01c01g02-lane"]
    replies.append(by_org := await street.get(CAMERAS, org="d01.s01.c01"))
    assert ids(by_org) == [GATE, "s01c01g02-lane"]
    replies.append(by_status := await street.get(CAMERAS, status="online"))
    assert ids(by_status) == []

    # Pages: the street's cameras, two at a time, each exactly once.
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        replies.append(page := await street.get(CAMERAS, **params))
        seen += ids(page)
        cursor = page.body["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(["s01-crossing", GATE, "s01c01g02-lane", "s01c02-market"])

    replies.append(
        patched := await street.patch(
            f"{CAMERAS}/s01c01g02-lane", {"name": "巷口（夜视）", "tags": ["lane"]}
        )
    )
    assert patched.status == 200, patched.body
    assert patched.body["name"] == "巷口（夜视）" and patched.body["tags"] == ["lane"]
    assert patched.body["has_credentials"] is True  # untouched by the patch
    replies.append(
        cleared := await street.patch(
            f"{CAMERAS}/s01c01g02-lane", {"onvif_username": None, "onvif_password": None}
        )
    )
    assert cleared.status == 200 and cleared.body["has_credentials"] is False

    replies.append(gone := await street.delete(f"{CAMERAS}/s01c01g02-lane"))
    assert gone.status == 204
    replies.append(missing := await street.get(f"{CAMERAS}/s01c01g02-lane"))
    assert (missing.status, missing.code) == (404, "camera.not_found")

    for reply in replies:
        text = repr(reply.body) + repr(reply.headers)
        assert ONVIF_SECRET not in text and URL_SECRET not in text


async def test_another_streets_dispatcher_can_neither_see_nor_change_a_camera(
    api: Api,
) -> None:
    other = api.as_(OTHER_STREET.token)
    for reply in [
        await other.get(f"{CAMERAS}/{GATE}"),
        await other.patch(f"{CAMERAS}/{GATE}", {"name": "越权"}),
        await other.delete(f"{CAMERAS}/{GATE}"),
    ]:
        assert (reply.status, reply.code) == (404, "camera.not_found"), reply.body
    assert ids(await other.get(CAMERAS)) == [SCHOOL]
    outside = await other.get(CAMERAS, org="d01.s01")
    assert (outside.status, outside.code) == (403, "auth.forbidden")
    created = await other.post(CAMERAS, new_camera())
    assert (created.status, created.code) == (403, "auth.forbidden")
    # Moving one of their own cameras into another street is refused too.
    moved = await other.patch(f"{CAMERAS}/{SCHOOL}", {"org": "d01.s01"})
    assert (moved.status, moved.code) == (403, "auth.forbidden")
    gate = await api.as_(STREET.token).get(f"{CAMERAS}/{GATE}")
    assert gate.body["name"] == "青和居小区东门"


async def test_writes_need_a_centre_role_and_file_sources_an_admin(api: Api) -> None:
    worker = api.as_(WORKER.token)
    assert (await worker.get(f"{CAMERAS}/{GATE}")).status == 200
    refused = await worker.post(CAMERAS, new_camera(org="d01.s01.c01.g01"))
    assert (refused.status, refused.code) == (403, "auth.forbidden")
    assert (await worker.delete(f"{CAMERAS}/{GATE}")).code == "auth.forbidden"

    clip = new_camera("s01-clip", source_url="file:///srv/clips/demo.mp4")
    by_dispatcher = await api.as_(STREET.token).post(CAMERAS, clip)
    assert (by_dispatcher.status, by_dispatcher.code) == (403, "auth.forbidden")
    by_admin = await api.as_(ADMIN.token).post(CAMERAS, clip)
    assert by_admin.status == 201, by_admin.body


async def test_invalid_and_duplicate_cameras_are_refused_with_clear_codes(api: Api) -> None:
    street = api.as_(STREET.token)
    for body in [
        new_camera("../etc"),
        new_camera("x" * 65),
        new_camera(lat=None),
        new_camera(source_url="ftp://10.0.0.7/x"),
        new_camera(org="d01.s01.c09"),
        new_camera(unknown_field=1),
        new_camera(tags=["x" * 33]),
    ]:
        reply = await street.post(CAMERAS, body)
        assert (reply.status, reply.code) == (422, "camera.invalid"), (body, reply.body)
    assert (await street.post(CAMERAS, new_camera(GATE))).code == "camera.exists"
    nothing = await street.patch(f"{CAMERAS}/{GATE}", {})
    assert (nothing.status, nothing.code) == (422, "camera.invalid")
    status = await street.patch(f"{CAMERAS}/{GATE}", {"status": "online"})
    assert (status.status, status.code) == (422, "camera.invalid")
    bad_query = await street.get(CAMERAS, status="broken")
    assert (bad_query.status, bad_query.code) == (400, "request.invalid_query")
