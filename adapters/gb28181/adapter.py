"""The GB/T 28181 adapter: the hub as the upper platform (上级平台). Devices, NVRs and lower
platforms REGISTER with digest auth, keep alive with MESSAGEs, and their catalogs become
cameras; live view INVITEs them (adapters/gb28181/live.py) and PTZ and alarms pass through.

Everything a device sends is answered from here; what must be stored is stored before the
answer where the device would otherwise believe something that is not so (a registration)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import structlog
from pydantic import SecretStr

from adapters.gb28181.catalog import CatalogSync
from adapters.gb28181.devices import DeviceTable, Gb28181Counters, LiveDevice
from adapters.gb28181.live import LiveCalls
from adapters.gb28181.requests import Local, RequestFactory
from hub.cameras.devices import DeviceSeen, VideoDeviceStore, parse_channel_url
from hub.cameras.models import AlarmReport
from hub.cameras.registry import CameraRegistry
from hub.config import ApiKey, Gb28181Settings
from hub.errors import HubError, NotReadyError
from hub.tasks import TaskRegistry
from protocols.gb28181.manscdp import ManscdpError, ManscdpMessage, parse_manscdp
from protocols.gb28181.manscdp_build import build_ptz_control
from protocols.gb28181.ptz import PTZ_STOP, PtzCommand, ptz_hex
from protocols.sip.digest import (
    NONCE_INVALID,
    NONCE_OK,
    NONCE_REPLAY,
    NONCE_STALE,
    DigestChallenge,
    NonceBook,
    parse_credentials,
    verify_response,
)
from protocols.sip.message import SipParseError, SipRequest, new_tag
from streams.ps_pull import PsCounters
from streams.sip_transport import Peer, SipTransport, advertised_host

log = structlog.get_logger(__name__)

WATCH_INTERVAL = 1.0
"""Seconds between two sweeps for expired registrations and missed keepalives."""
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"
CHINA = timedelta(hours=8)
"""Devices set their clocks from the REGISTER answer's Date, in local (Beijing) time."""
ALARM_LEVELS = {1: "critical", 2: "warning", 3: "info", 4: "info"}
"""AlarmPriority (1 highest … 4) → the hub's alarm level."""
ALARM_METHODS = {1: "phone", 2: "device", 3: "sms", 4: "gps", 5: "video", 6: "fault", 7: "other"}
"""AlarmMethod → the alarm kind's suffix (``gb28181.video`` …)."""
DESCRIPTION_MAX = 2000
DEFAULT_PASSWORD = "12345678"
"""The factory default of most cameras, and of these settings: warned about at start."""
DEFAULT_EXPIRES = 3600
"""RFC 3261 10.2.1.1: a REGISTER that names no time asks for an hour."""


class Gb28181Adapter:
    """The SIP server of the hub's GB/T 28181 platform."""

    name = "gb28181"

    def __init__(
        self,
        settings: Gb28181Settings,
        store: VideoDeviceStore,
        registry: CameraRegistry,
        tasks: TaskRegistry,
    ) -> None:
        self.settings = settings
        self.store = store
        self.registry = registry
        self.tasks = tasks
        self.counters = Gb28181Counters()
        self.sweeps = 0
        """Device supervision sweeps done (each one's status writes included)."""
        self.devices = DeviceTable()
        self.transport = SipTransport(
            settings.host,
            settings.port,
            self._on_request,
            max_message=settings.max_message_bytes,
            max_connections=settings.max_tcp_connections,
        )
        self.local = Local(settings.sip_id, settings.domain, settings.sip_address, settings.port)
        self.requests = RequestFactory(self.local)
        self.catalog = CatalogSync(self)
        self.live = LiveCalls(self)
        self._nonces = NonceBook(_secret(), settings.nonce_lifetime)
        self._passwords = {d.id: d.password.get_secret_value() for d in settings.devices}
        self._device_orgs = {d.id: d.org for d in settings.devices if d.org}
        self._auth_logged: dict[str, float] = {}
        self._ptz_stops: dict[str, asyncio.TimerHandle] = {}
        self._status_locks: dict[str, asyncio.Lock] = {}
        self.media_counters: PsCounters | None = None
        """The live media pulls' counters (set by whoever installs the pulls)."""
        self._watch: asyncio.Task[None] | None = None
        self._ready = False

    @property
    def ready(self) -> bool:
        """The SIP server is listening."""
        return self._ready

    @property
    def port(self) -> int:
        """The bound SIP port (UDP and TCP)."""
        return self.transport.port

    async def start(self) -> None:
        """Bind UDP and TCP; raises NotReadyError when the port is taken."""
        if self._ready:
            return
        try:
            port = await self.transport.start()
        except OSError as err:
            raise NotReadyError(
                f"cannot bind the SIP port {self.settings.host}:{self.settings.port}: {err}",
            ) from err
        self.local.host = advertised_host(self.settings.sip_address, self.settings.host)
        self.local.port = port
        await self._restore()
        self._watch = self.tasks.spawn(self._watch_devices(), name="gb28181 device watch")
        self._ready = True
        if self.settings.password.get_secret_value() == DEFAULT_PASSWORD:
            log.warning("GB/T 28181 devices use the default password: set HUB_GB28181__PASSWORD")
        log.info("GB/T 28181 SIP server listening", host=self.settings.host, port=port,
                 sip_id=self.settings.sip_id, domain=self.settings.domain)  # fmt: skip

    async def stop(self) -> None:
        """Close the SIP sockets. Safe to call twice."""
        self._ready = False
        for timer in self._ptz_stops.values():
            timer.cancel()
        self._ptz_stops.clear()
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        await self.transport.stop()

    # -- requests in ---------------------------------------------------------------------

    def _on_request(self, request: SipRequest, peer: Peer) -> None:
        method = request.method
        if method == "REGISTER":
            self._register(request, peer)
        elif method == "MESSAGE":
            self._message(request, peer)
        elif method in ("OPTIONS", "BYE"):
            self.transport.reply(request, peer, 200)
            if method == "BYE":
                self.live.remote_bye(request.call_id)
        elif method == "ACK":
            return
        elif method == "INVITE":
            self.transport.reply(request, peer, 488, "Not Acceptable Here")  # no talk/broadcast
        else:
            self.transport.reply(request, peer, 501)

    def _password(self, device_id: str) -> str:
        return self._passwords.get(device_id) or self.settings.password.get_secret_value()

    def _register(self, request: SipRequest, peer: Peer) -> None:
        bump = self.counters.bump
        try:
            device_id = request.from_addr.uri.user or ""
            expires = _expires(request)
        except (SipParseError, ValueError) as err:
            bump(self.counters.registrations, "bad_request")
            self.transport.reply(request, peer, 400, str(err)[:100])
            return
        value = request.headers.get("Authorization")
        if value is None:
            bump(self.counters.registrations, "challenged")
            self._challenge(request, peer, stale=False)
            return
        try:
            credentials = parse_credentials(value)
        except SipParseError as err:
            bump(self.counters.registrations, "bad_request")
            self.transport.reply(request, peer, 400, str(err)[:100])
            return
        check = self._nonces.check(credentials, time.time())
        if check in (NONCE_INVALID, NONCE_STALE):
            bump(self.counters.registrations, "stale" if check == NONCE_STALE else "challenged")
            self._challenge(request, peer, stale=check == NONCE_STALE)
            return
        ok = (
            check == NONCE_OK
            and credentials.username == device_id
            and credentials.realm == self.settings.domain
            and verify_response(credentials, "REGISTER", self._password(device_id))
        )
        if not ok:
            bump(self.counters.registrations, "replay" if check == NONCE_REPLAY else "forbidden")
            self._auth_failed(device_id, peer, "replayed nonce count" if check == NONCE_REPLAY
                              else "wrong credentials")  # fmt: skip
            self.transport.reply(request, peer, 403)
            return
        expires = min(expires, self.settings.register_expires_max)
        if expires == 0:
            bump(self.counters.registrations, "unregistered")
            self.tasks.spawn(self._unregister(request, peer, device_id), name="gb28181 unregister")
            return
        self.tasks.spawn(
            self._registered(request, peer, device_id, expires), name="gb28181 register"
        )

    def _challenge(self, request: SipRequest, peer: Peer, stale: bool) -> None:
        challenge = DigestChallenge(
            realm=self.settings.domain, nonce=self._nonces.issue(time.time()), stale=stale
        )
        self.transport.reply(
            request, peer, 401, headers=(("WWW-Authenticate", challenge.header_value()),)
        )

    def _auth_failed(self, device_id: str, peer: Peer, why: str) -> None:
        """Count always; log once per address and interval (a brute force must not flood)."""
        now = time.monotonic()
        last = self._auth_logged.get(peer.host)
        if last is None or now - last >= self.settings.auth_failure_log_interval:
            if len(self._auth_logged) > 10000:
                self._auth_logged.clear()
            self._auth_logged[peer.host] = now
            failures = self.counters.registrations.get("forbidden", 0)
            log.warning("GB/T 28181 registration refused", device_id=device_id[:64],
                        address=peer.host, reason=why, refused_so_far=failures)  # fmt: skip

    def org_for(self, device_id: str, civil_code: str | None = None) -> str:
        """The org of a device's channel: the device's own in config, else the org the
        channel's CivilCode (or the device id's first 8 digits) maps to by longest prefix,
        else the default."""
        if device_id in self._device_orgs:
            return self._device_orgs[device_id]
        code = civil_code or (device_id[:8] if device_id.isdigit() else "")
        best = ""
        for prefix in self.settings.civil_code_orgs:
            if code.startswith(prefix) and len(prefix) > len(best):
                best = prefix
        return self.settings.civil_code_orgs[best] if best else self.settings.default_org

    async def _registered(
        self, request: SipRequest, peer: Peer, device_id: str, expires: int
    ) -> None:
        now = time.monotonic()
        org = self.org_for(device_id)
        charset = "GB2312"
        known = self.devices.get(device_id)
        if known is not None:
            charset = known.charset
        wall = datetime.now(UTC)
        seen = DeviceSeen(device_id, org, peer.transport, peer.host, peer.port, charset,
                          wall + timedelta(seconds=expires))  # fmt: skip
        async with self._status_lock(device_id):
            try:
                came_back = await self.store.registered(seen)
            except Exception:
                log.exception("storing a registration failed", device_id=device_id)
                self.transport.reply(request, peer, 500)
                return
            device = LiveDevice(device_id, org, peer, charset, now + expires, now)
            self.devices.put(device)
            self.counters.bump(self.counters.registrations, "ok")
            date = (wall + CHINA).strftime(DATE_FORMAT)[:-3]
            self.transport.reply(
                request, peer, 200, to_tag=new_tag(),
                headers=(("Expires", str(expires)), ("Date", date),
                         ("Contact", request.headers.get("Contact") or self.local.contact)),
            )  # fmt: skip
            if came_back:
                log.info("GB/T 28181 device online", device_id=device_id, address=peer.host,
                         transport=peer.transport)  # fmt: skip
                await self.store.set_status(device_id, True, "registered")
            # Not if it unregistered meanwhile (its unregistration waits for this lock).
            if (came_back or known is None) and self.devices.get(device_id) is device:
                self.catalog.schedule(device, at_once=True)

    async def _unregister(self, request: SipRequest, peer: Peer, device_id: str) -> None:
        self.devices.remove(device_id)
        self.transport.reply(request, peer, 200, to_tag=new_tag(), headers=(("Expires", "0"),))
        self.catalog.cancel(device_id)
        log.info("GB/T 28181 device unregistered", device_id=device_id)
        await self._store_status(device_id, False, "the device unregistered")

    def _message(self, request: SipRequest, peer: Peer) -> None:
        device_id = request.from_addr.uri.user or ""
        device = self.devices.get(device_id)
        if device is None:
            self.counters.bump(self.counters.rejected, "unknown_device")
            self.transport.reply(request, peer, 403, "Not Registered")
            return
        try:
            message = parse_manscdp(request.body)
        except ManscdpError as err:
            self.counters.bump(self.counters.rejected, "malformed_body")
            self.transport.reply(request, peer, 400, str(err)[:100])
            return
        self.transport.reply(request, peer, 200)
        device.heard(peer)
        device.charset = message.encoding or device.charset
        self.counters.bump(self.counters.messages, message.cmd_type)
        if message.cmd_type == "Keepalive" and message.root == "Notify":
            self._keepalive(device)
        elif message.cmd_type == "Catalog" and message.root == "Response":
            self.catalog.received(device, message)
        elif message.cmd_type == "DeviceInfo" and message.root == "Response":
            self.tasks.spawn(self._device_info(device, message), name="gb28181 device info")
        elif message.cmd_type == "Alarm" and message.root == "Notify":
            self.tasks.spawn(self._alarm(device, message), name="gb28181 alarm")

    def _keepalive(self, device: LiveDevice) -> None:
        self.counters.keepalives += 1
        now = device.last_seen
        if not device.online:
            device.online = True
            log.info("GB/T 28181 device online again", device_id=device.id)
            self.tasks.spawn(self._back_online(device), name="gb28181 device online")
            if device.catalog_due:  # its last sync found it silent (a first one, maybe)
                device.catalog_due = False
                self.catalog.schedule(device, at_once=True)
        elif now - device.keepalive_written >= self.settings.keepalive_interval / 2:
            device.keepalive_written = now
            self.tasks.spawn(
                self.store.keepalive(device.id, datetime.now(UTC), device.peer.host,
                                     device.peer.port),
                name="gb28181 keepalive",
            )  # fmt: skip

    async def _back_online(self, device: LiveDevice) -> None:
        device.keepalive_written = device.last_seen
        async with self._status_lock(device.id):
            peer = device.peer
            await self.store.keepalive(device.id, datetime.now(UTC), peer.host, peer.port)
            await self.store.set_status(device.id, True, "keepalives resumed")

    def _status_lock(self, device_id: str) -> asyncio.Lock:
        """The lock that keeps one device's stored state changes in the order they happened
        (an unregistration must not be overtaken by the registration just before it)."""
        lock = self._status_locks.get(device_id)
        if lock is None:
            lock = self._status_locks[device_id] = asyncio.Lock()
        return lock

    async def _store_status(self, device_id: str, online: bool, reason: str) -> None:
        async with self._status_lock(device_id):
            await self.store.set_status(device_id, online, reason)

    async def _device_info(self, device: LiveDevice, message: ManscdpMessage) -> None:
        fields = message.fields
        await self.store.describe(
            device.id, fields.get("DeviceName"), fields.get("Manufacturer"), fields.get("Model"),
            fields.get("Firmware"),
        )  # fmt: skip

    async def _alarm(self, device: LiveDevice, message: ManscdpMessage) -> None:
        """A device alarm becomes ``camera.alarm`` of the channel it names (the device's only
        channel when it names the device itself)."""
        self.counters.alarms += 1
        fields = message.fields
        channel = message.device_id
        camera = await self.registry.get(f"{device.id}_{channel}")
        if camera is None and channel == device.id:  # a camera naming itself: its one channel
            found = await self.store.device(device.id)
            if found is not None and len(found[1]) == 1:
                camera = await self.registry.get(found[1][0].camera_id)
        if camera is None:
            self.counters.bump(self.counters.rejected, "alarm_unknown_channel")
            log.info("alarm of an unknown channel", device_id=device.id, channel=channel)
            return
        method = _int(fields.get("AlarmMethod"))
        kind = f"gb28181.{ALARM_METHODS.get(method or 0, 'other')}"
        level = ALARM_LEVELS.get(_int(fields.get("AlarmPriority")) or 4, "info")
        occurred = _local_time(fields.get("AlarmTime"))
        report = AlarmReport.model_validate({
            "kind": kind, "level": level,
            "description": (fields.get("AlarmDescription") or "")[:DESCRIPTION_MAX] or None,
            "occurred_at": occurred, "external_ref": f"{channel}:{message.sn}"[:128],
        })  # fmt: skip
        key = ApiKey(id=f"gb28181/{device.id}", name=device.id, secret=SecretStr(""),
                     org=device.org)  # fmt: skip
        try:
            await self.registry.raise_alarm(camera, key, report)
        except HubError as err:
            log.info("alarm not raised", camera_id=camera.id, error=err.message)

    # -- controls out --------------------------------------------------------------------

    async def move(
        self, camera_id: str, source_url: str, command: PtzCommand, timeout_s: float
    ) -> None:
        """Send a PTZ move (or stop) to a channel; a move is followed by a stop after
        ``timeout_s`` unless another command comes first (a lost stop cannot leave the
        camera turning: GB/T 28181 moves last until stopped)."""
        timer = self._ptz_stops.pop(camera_id, None)
        if timer is not None:
            timer.cancel()
        await self.ptz(source_url, command)
        if command != PTZ_STOP and timeout_s > 0:
            loop = asyncio.get_running_loop()
            self._ptz_stops[camera_id] = loop.call_later(
                timeout_s, self._auto_stop, camera_id, source_url
            )

    def _auto_stop(self, camera_id: str, source_url: str) -> None:
        self._ptz_stops.pop(camera_id, None)
        self.tasks.spawn(self._stop_quietly(source_url), name="gb28181 ptz stop")

    async def _stop_quietly(self, source_url: str) -> None:
        try:
            await self.ptz(source_url, PTZ_STOP)
        except HubError as err:
            log.info("automatic PTZ stop failed", error=err.message)

    async def ptz(self, source_url: str, command: PtzCommand) -> None:
        """Send a DeviceControl PTZ command to the channel of ``source_url``; raises HubError
        when the device is not registered or refuses it."""
        parts = parse_channel_url(source_url)
        device = self.devices.get(parts[0]) if parts else None
        if parts is None or device is None or not device.online:
            raise HubError("camera.unavailable", "the camera's GB/T 28181 device is offline", 503)
        body = build_ptz_control(self.requests.sn(), parts[1], ptz_hex(command), device.charset)
        request = self.requests.message(
            device.id, device.peer.host, device.peer.port, device.peer.transport, body
        )
        self.counters.ptz_commands += 1
        try:
            response = await asyncio.wait_for(
                self.transport.request(request, device.peer), self.settings.request_timeout
            )
        except (TimeoutError, ConnectionError) as err:
            raise HubError("camera.ptz_failed", "the device did not answer the PTZ command",
                           502) from err  # fmt: skip
        if response.status >= 300:
            raise HubError("camera.ptz_failed", f"the device refused PTZ: {response.status} "
                           f"{response.reason}", 502)  # fmt: skip

    # -- supervision ---------------------------------------------------------------------

    async def _restore(self) -> None:
        """Devices stored as online at the last stop get one keepalive period to show up."""
        now = time.monotonic()
        for row in await self.store.online_devices():
            peer = Peer(row.transport, row.host, row.port)
            expires = now + self.settings.keepalive_interval * self.settings.keepalive_misses
            self.devices.put(LiveDevice(row.id, row.org, peer, row.charset, expires, now))

    async def _watch_devices(self) -> None:
        settings = self.settings
        silence = settings.keepalive_interval * settings.keepalive_misses
        while True:
            asleep = time.monotonic()
            await asyncio.sleep(WATCH_INTERVAL)
            now = time.monotonic()
            stalled = now - asleep - WATCH_INTERVAL  # how late the loop woke this task
            if stalled > WATCH_INTERVAL:
                # The hub itself did not run (a blocked loop, a suspended VM): keepalives
                # and REGISTERs sent meanwhile still wait in the sockets, and a datagram
                # socket hands over one per turn of the loop. Silence the hub could not
                # hear is not the devices' fault: move their deadlines by the stall.
                self.counters.supervision_stalls += 1
                log.warning("device supervision stalled", seconds=round(stalled, 1))
                for device in self.devices.all():
                    device.last_seen += stalled
                    device.expires_at += stalled
                self.sweeps += 1
                continue
            for device in self.devices.all():
                if now >= device.expires_at:
                    self.devices.remove(device.id)
                    self.catalog.cancel(device.id)
                    log.warning("GB/T 28181 registration expired", device_id=device.id)
                    await self._store_status(device.id, False, "registration expired")
                elif device.online and now - device.last_seen > silence:
                    device.online = False
                    log.warning("GB/T 28181 device offline", device_id=device.id,
                                silent_for=round(now - device.last_seen))  # fmt: skip
                    await self._store_status(
                        device.id, False,
                        f"no keepalive for {settings.keepalive_misses} intervals",
                    )  # fmt: skip
            self.sweeps += 1


def _expires(request: SipRequest) -> int:
    """The registration time asked for: the Contact's expires parameter, else Expires."""
    contact = request.headers.get("Contact") or ""
    for part in contact.split(";")[1:]:
        name, _, value = part.partition("=")
        if name.strip().lower() == "expires":
            return _seconds(value)
    header = request.headers.get("Expires")
    return DEFAULT_EXPIRES if header is None else _seconds(header)


def _seconds(value: str) -> int:
    text = value.strip()
    if not text.isdigit() or len(text) > 10:
        raise ValueError("Expires must be a number of seconds")
    return int(text)


def _int(value: str | None) -> int | None:
    try:
        return None if value is None else int(value.strip())
    except ValueError:
        return None


def _local_time(value: str | None) -> str | None:
    """A device's local (Beijing) time without offset, as ISO 8601 with +08:00."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC) - CHINA
    return parsed.astimezone(UTC).isoformat()


def _secret() -> bytes:
    import secrets

    return secrets.token_bytes(32)
