"""``hub demo``: the whole demo run. It reaches the hub only through its public interfaces
(REST for the directory, cases and notices; MQTT for the phones), as separate clients would,
whether it runs as its own process or inside ``hub serve --demo``."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from hub.config import Settings
from hub.demo.api import DemoApiError, HubApi
from hub.demo.camera import CAMERA_ID, DemoCamera, start_demo_camera
from hub.demo.cases import CaseDriver
from hub.demo.fleet import Broker, DemoBrokerError, PhoneFleet
from hub.demo.notices import NoticeDriver
from hub.demo.options import DemoOptions
from hub.demo.people import People
from hub.demo.runtime import runtime_broker
from hub.demo.walk import Walker
from hub.org.seed import UserSpec, read_users
from protocols.geo import GridIndex

log = structlog.get_logger(__name__)

SILENCE_MARGIN_S = 30.0
"""A silent phone stays quiet this much longer than the hub's offline_after."""
MAX_WORKER_PAGES = 20
PAGE = 500

Say = Callable[[str], None]


class DemoError(Exception):
    """The demo cannot start (hub or broker unreachable, no demo data)."""


@dataclass
class DemoSummary:
    """What a run did."""

    pings: int = 0
    cases_reported: int = 0
    case_steps: int = 0
    notices: int = 0
    wanders: int = 0
    silences: int = 0


def default_broker(settings: Settings, url: str) -> str:
    """The broker ``hub demo`` talks to when not told: the one the running hub recorded in
    var/runtime.json, else the configured one, else the embedded broker's configured port."""
    recorded = runtime_broker(url)
    if recorded:
        return recorded
    if settings.mqtt_url:
        return settings.mqtt_url
    return f"mqtt://{settings.mqtt.embedded_host}:{settings.mqtt.embedded_port}"


def printer(prefix: str = "[demo]") -> Say:
    """Progress lines on stdout, time-stamped."""

    def say(line: str) -> None:
        print(f"{prefix} {time.strftime('%H:%M:%S')} {line}", flush=True)

    return say


async def run_demo(
    settings: Settings,
    options: DemoOptions,
    *,
    say: Say | None = None,
    stop: asyncio.Event | None = None,
    broker: Callable[[], str | None] | None = None,
) -> DemoSummary:
    """Run the demo until ``stop`` is set, ``options.duration`` ends or the task is
    cancelled; the MQTT connection and HTTP session are always closed. Without
    ``options.mqtt_url`` the broker is ``broker()`` (asked once the hub is ready), else
    :func:`default_broker`."""
    say = say or printer()
    stop = stop or asyncio.Event()
    if settings.users_file is None:
        raise DemoError("no demo users: the demo needs users_file (demo data)")
    rng = random.Random(options.seed)
    people = People(tuple(await asyncio.to_thread(read_users, settings.users_file)))
    timings = options.timings
    summary = DemoSummary()
    async with HubApi(options.url, settings.jwt_secret.get_secret_value()) as api:
        say(f"等待 hub 就绪：{options.url}")
        try:
            await api.wait_ready(options.ready_timeout)
            walkers = await _phones(api, people, options.workers, rng, say)
        except DemoApiError as err:
            raise DemoError(f"hub at {options.url}: {err}") from err
        mqtt_url = (
            options.mqtt_url
            or (broker() if broker is not None else None)
            or default_broker(settings, options.url)
        )
        silence = timings.silence_s
        if silence is None:
            silence = settings.locations.offline_after + SILENCE_MARGIN_S
        try:
            fleet = PhoneFleet(
                walkers,
                Broker.from_url(mqtt_url, settings.mqtt.username, _password(settings)),
                topic_prefix=options.topic_prefix,
                timings=timings,
                silence_s=silence,
                say=say,
                ca_file=settings.mqtt.tls_ca_file,
            )
            await fleet.connect()
        except DemoBrokerError as err:
            raise DemoError(str(err)) from err
        say(f"{len(walkers)} 部网格手机已连接 {_safe(mqtt_url)}，hub {options.url}")
        cases = CaseDriver(
            api, people, walkers, rng, say, advance_probability=timings.advance_probability
        )
        notices = NoticeDriver(api, people, rng, say)
        camera: DemoCamera | None = None
        try:
            admin = _admin(people)
            if options.camera:
                camera = await start_demo_camera(
                    api, admin, walkers, options.media_dir, timings.camera_clip_s
                )
                say(_camera_line(camera))
            await cases.load_categories(admin)
            if adopted := await cases.adopt(admin):
                say(f"接续 {adopted} 件未办结的演示案件")
            async with asyncio.TaskGroup() as tg:
                running = [
                    tg.create_task(fleet.run(), name="demo phones"),
                    tg.create_task(
                        _every(timings.case_interval, cases.tick, say, timings.first_case_delay),
                        name="demo cases",
                    ),
                    tg.create_task(
                        _every(timings.notice_interval, notices.send, say, timings.case_interval),
                        name="demo notices",
                    ),
                    tg.create_task(
                        _every(
                            timings.status_interval,
                            _status(fleet, say),
                            say,
                            timings.status_interval,
                        ),
                        name="demo status",
                    ),
                ]
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), options.duration)
                for task in running:
                    task.cancel()
        except DemoApiError as err:
            raise DemoError(f"hub at {options.url}: {err}") from err
        finally:
            if camera is not None:
                await camera.stop()
            await fleet.close()
            summary = DemoSummary(
                pings=fleet.stats.pings,
                cases_reported=cases.reported,
                case_steps=cases.steps,
                notices=notices.sent,
                wanders=fleet.stats.wanders,
                silences=fleet.stats.silences,
            )
    say(
        f"演示结束：定位 {summary.pings} 条，案件上报 {summary.cases_reported} 件、"
        f"流转 {summary.case_steps} 步，通知 {summary.notices} 条"
    )
    return summary


async def _every(
    interval: float, step: Callable[[], Awaitable[None]], say: Say, first: float = 0.0
) -> None:
    """Run ``step`` every ``interval`` seconds (after ``first``) until cancelled; a step that
    runs long delays the next, never overlaps it. A failing step is reported once when it
    breaks and once when it recovers; the demo goes on."""
    await asyncio.sleep(first)
    healthy = True
    while True:
        started = time.monotonic()
        try:
            await step()
        except Exception as err:
            if healthy:
                log.warning(
                    "demo step failed", step=getattr(step, "__qualname__", ""), exc_info=True
                )
                say(f"演示步骤出错：{err!r}，稍后重试")
                healthy = False
        else:
            if not healthy:
                say("演示步骤恢复正常")
                healthy = True
        await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))


def _status(fleet: PhoneFleet, say: Say) -> Callable[[], Awaitable[None]]:
    async def report() -> None:
        say(fleet.summary())

    return report


def _camera_line(camera: DemoCamera) -> str:
    if camera.kind == "rtsp":
        return f"演示摄像头 {CAMERA_ID}：RTSP {camera.source_url}（GStreamer RTSP 服务器）"
    return (
        f"演示摄像头 {CAMERA_ID}：文件源 {camera.source_url}"
        "（未找到 GStreamer RTSP 服务器：apt-get install python3-gi gir1.2-gst-rtsp-server-1.0）"
    )


def _admin(people: People) -> UserSpec:
    admin = min(
        (u for u in people.users if u.active and "admin" in u.roles),
        key=lambda u: u.org.count("."),
        default=None,
    )
    if admin is None:
        raise DemoError("the demo users have no admin")
    return admin


async def _phones(
    api: HubApi, people: People, wanted: int | None, rng: random.Random, say: Say
) -> list[Walker]:
    """One phone per demo grid worker whose grid has a polygon (``wanted`` of them at
    random), each registered with the hub as a worker (created if missing)."""
    admin = _admin(people)
    geojson = await api.request("GET", f"/api/v1/grids?org={admin.org}", admin)
    grids = GridIndex.from_geojson(geojson)
    workers = [u for u in people.grid_workers if u.org in grids]
    if wanted is not None and wanted < len(workers):
        workers = sorted(rng.sample(workers, wanted), key=lambda u: u.id)
    if not workers:
        raise DemoError("no demo grid workers with a grid polygon")
    known = await _registered(api, admin)
    walkers: list[Walker] = []
    for user in workers:
        if user.id not in known:
            body = {"id": user.id, "name": user.name, "phone": user.phone, "grid": user.org}
            await api.request("POST", "/api/v1/workers", admin, body)
            say(f"登记网格员 {user.name}（{user.id}）")
        elif not known[user.id]:
            say(f"网格员 {user.id} 已停用，跳过")
            continue
        walker = Walker.in_grid(user.id, grids.area(user.org), rng)
        if walker is not None:
            walkers.append(walker)
    return walkers


async def _registered(api: HubApi, admin: UserSpec) -> dict[str, bool]:
    """Worker id → active, for every worker of the admin's subtree."""
    known: dict[str, bool] = {}
    cursor: str | None = None
    for _ in range(MAX_WORKER_PAGES):
        query = f"?org={admin.org}&limit={PAGE}" + (f"&cursor={cursor}" if cursor else "")
        page = await api.request("GET", "/api/v1/workers" + query, admin)
        known.update({w["id"]: w["active"] for w in page["items"]})
        cursor = page["next_cursor"]
        if not cursor:
            break
    return known


def _password(settings: Settings) -> str | None:
    secret = settings.mqtt.password
    return secret.get_secret_value() if secret is not None else None


def _safe(url: str) -> str:
    """A broker URL without credentials, for printing."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else url
