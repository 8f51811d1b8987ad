"""The simulated grid phones on the wire: one paho-mqtt connection publishing every phone's
``grid/<worker_id>/location`` pings at QoS 1, spread evenly over the ping interval.

One connection for all phones, not one each: the hub knows a phone by its topic, not by its
connection, so 36 sockets and 36 paho network threads would add load (inside the hub's own
process under ``hub serve --demo``) and nothing the console shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from hub.demo.options import DemoTimings
from hub.demo.walk import Mode, Walker

QOS = 1
KEEPALIVE = 30
CONNECT_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
MAX_QUEUED = 2000
"""Pings paho keeps while the broker is away; past it new ones are dropped (bounded)."""
RECONNECT_MAX_DELAY = 10
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
FIRST_EVENT_PINGS = 3
"""Ping intervals before the first excursion (twice that before the first silence)."""


class DemoBrokerError(Exception):
    """The broker URL is unusable or the broker cannot be reached."""


@dataclass(frozen=True, slots=True)
class Broker:
    """Where to connect (from an ``mqtt://`` or ``mqtts://`` URL)."""

    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None

    @classmethod
    def from_url(cls, url: str, username: str | None = None, password: str | None = None) -> Broker:
        """Parse a broker URL; credentials in it win over the ones given."""
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise DemoBrokerError(f"not an mqtt:// or mqtts:// URL: {url}")
        return cls(
            host=parts.hostname,
            port=parts.port or DEFAULT_PORTS[parts.scheme],
            tls=parts.scheme == "mqtts",
            username=unquote(parts.username) if parts.username else username,
            password=unquote(parts.password) if parts.password else password,
        )


@dataclass
class FleetStats:
    """What the phones did."""

    pings: int = 0
    dropped: int = 0
    wanders: int = 0
    silences: int = 0


class PhoneFleet:
    """The phones and their one MQTT connection; ``run`` until cancelled."""

    def __init__(
        self,
        walkers: list[Walker],
        broker: Broker,
        *,
        topic_prefix: str,
        timings: DemoTimings,
        silence_s: float,
        say: Callable[[str], None],
        ca_file: Path | None = None,
    ) -> None:
        self.walkers = walkers
        self.stats = FleetStats()
        self._broker = broker
        prefix = topic_prefix.strip("/")
        self._prefix = f"{prefix}/" if prefix else ""
        self._timings = timings
        self._silence_s = silence_s
        self._say = say
        self._silent: Walker | None = None
        self._next_silence = 0.0
        self._connected: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"grid-hub-demo-{uuid.uuid4().hex[:8]}",
            protocol=paho.MQTTv311,  # the embedded broker speaks 3.1.1 only
            clean_session=True,
        )
        self._client.max_queued_messages_set(MAX_QUEUED)
        self._client.reconnect_delay_set(1, RECONNECT_MAX_DELAY)
        if broker.username:
            self._client.username_pw_set(broker.username, broker.password)
        if broker.tls:
            self._client.tls_set(ca_certs=str(ca_file) if ca_file else None)
        self._client.on_connect = self._on_connect

    # ---- connection ---------------------------------------------------------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        future, loop = self._connected, self._loop
        if future is None or loop is None:
            return
        loop.call_soon_threadsafe(_settle, future, reason)

    async def connect(self) -> None:
        """Connect (paho's network thread starts) or raise DemoBrokerError."""
        self._loop = asyncio.get_running_loop()
        self._connected = self._loop.create_future()
        b = self._broker
        try:
            self._client.connect_async(b.host, b.port, KEEPALIVE)
        except (OSError, ssl.SSLError, ValueError) as err:
            raise DemoBrokerError(f"mqtt://{b.host}:{b.port}: {err}") from err
        self._client.loop_start()
        try:
            await asyncio.wait_for(asyncio.shield(self._connected), CONNECT_TIMEOUT)
        except (TimeoutError, DemoBrokerError) as err:
            await self.close()
            why = str(err) or f"no answer within {CONNECT_TIMEOUT:.0f} s"
            raise DemoBrokerError(f"broker {b.host}:{b.port} not reachable: {why}") from err

    async def close(self) -> None:
        """Disconnect and stop paho's thread (safe twice)."""
        with contextlib.suppress(Exception):
            self._client.disconnect()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.to_thread(self._client.loop_stop), STOP_TIMEOUT)

    # ---- the phones ---------------------------------------------------------------------

    async def run(self) -> None:
        """Ping forever: each phone once per ping interval, spread evenly; now and then a
        phone wanders out of its grid, or goes silent for a while."""
        t = self._timings
        gap = t.ping_interval / max(1, len(self.walkers))
        now = time.monotonic()
        # The first excursion and silence come early, so a newcomer sees the alerts soon.
        next_wander = now + min(t.wander_interval, FIRST_EVENT_PINGS * t.ping_interval)
        self._next_silence = now + min(t.silence_interval, 2 * FIRST_EVENT_PINGS * t.ping_interval)
        while True:
            for walker in self.walkers:
                now = time.monotonic()
                if now >= next_wander:
                    self._wander()
                    next_wander = now + t.wander_interval
                if now >= self._next_silence and self._silent is None:
                    self._silence(now)
                self._ping(walker, now)
                await asyncio.sleep(gap)

    def _ping(self, walker: Walker, now: float) -> None:
        if walker.silent_until:
            if now < walker.silent_until:
                return
            walker.silent_until = 0.0
            self._silent = None
            self._next_silence = now + self._timings.silence_interval
            self._say(f"手机 {walker.worker_id} 恢复上报")
        before = walker.mode
        t = self._timings
        point = walker.step(t.walk_s or t.ping_interval, t.wander_fixes)
        if before is Mode.OUTSIDE and walker.mode is Mode.PATROL:
            self._say(f"手机 {walker.worker_id} 返回网格 {walker.area.path}")
        payload = {
            "lat": round(point.lat, 7),
            "lon": round(point.lon, 7),
            "acc": walker.accuracy_m,
            "batt": round(walker.battery),
            "ts": round(time.time(), 3),
        }
        topic = f"{self._prefix}grid/{walker.worker_id}/location"
        info = self._client.publish(topic, orjson.dumps(payload), qos=QOS)
        if info.rc == paho.MQTT_ERR_SUCCESS or info.rc == paho.MQTT_ERR_NO_CONN:
            self.stats.pings += 1  # NO_CONN: queued, sent on reconnect
        else:
            self.stats.dropped += 1

    def _candidates(self) -> list[Walker]:
        return [w for w in self.walkers if w.mode is Mode.PATROL and not w.silent_until]

    def _wander(self) -> None:
        candidates = self._candidates()
        if not candidates:
            return
        walker = candidates[0].rng.choice(candidates)
        walker.leave(self._timings.wander_beyond_m)
        self.stats.wanders += 1
        self._say(f"手机 {walker.worker_id} 走出网格 {walker.area.path}（越界告警）")

    def _silence(self, now: float) -> None:
        candidates = self._candidates()
        if len(candidates) < 2:
            return
        walker = candidates[0].rng.choice(candidates)
        walker.silent_until = now + self._silence_s
        self._silent = walker
        self.stats.silences += 1
        self._say(f"手机 {walker.worker_id} 静默 {self._silence_s:.0f} 秒（离线告警）")

    def summary(self) -> str:
        """One line about the phones."""
        outside = sum(1 for w in self.walkers if w.mode is not Mode.PATROL)
        silent = sum(1 for w in self.walkers if w.silent_until)
        return (
            f"手机 {len(self.walkers)} 部：已发 {self.stats.pings} 条定位，"
            f"越界 {outside} 部，静默 {silent} 部"
        )


def _settle(future: asyncio.Future[None], reason: Any) -> None:
    if future.done():
        return
    if getattr(reason, "is_failure", False):
        future.set_exception(DemoBrokerError(f"CONNACK refused: {reason}"))
    else:
        future.set_result(None)
