"""Resource cascade (级联) to the governance video network: the hub registers to the
network's GB/T 28181 gateway as a lower platform (digest auth, keepalives, renewal before
expiry, backoff while the gateway is down) and shares its cameras: Catalog queries are
answered with every camera (split over several messages), INVITEs with MPEG-PS over RTP
remuxed from the camera's shared pull, DeviceControl PTZ is forwarded to the camera, and
camera alarms go upward as Alarm notifications.

Only the configured upper platform is served: requests from any other SIP id get 403.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from adapters.videonet.directory import CameraDirectory, SharedCamera
from hub.cameras.registry import CameraRecord
from hub.config import CascadeSettings
from hub.errors import NotReadyError
from hub.events import CameraAlarm
from hub.metric_families import count
from hub.tasks import TaskRegistry
from protocols.gb28181.manscdp import ManscdpError, ManscdpMessage, parse_manscdp
from protocols.gb28181.manscdp_build import (
    build_alarm_notify,
    build_catalog_response,
    build_device_info_response,
    build_keepalive,
    build_response,
)
from protocols.gb28181.ptz import PtzCommand, parse_ptz
from protocols.gb28181.ssrc import ssrc_value
from protocols.sip.addresses import Via, parse_uri
from protocols.sip.dialog import Dialog
from protocols.sip.digest import authorization_value, parse_challenge
from protocols.sip.errors import SipParseError
from protocols.sip.message import (
    SipRequest,
    SipResponse,
    make_request,
    new_branch,
    new_call_id,
    new_tag,
)
from protocols.sip.sdp import MediaDescription, SdpError, SessionDescription, parse_sdp
from streams.manager import MediaError, StreamManager
from streams.ps_pull import PortPool
from streams.ps_push import PsPush, PushCounters, PushError
from streams.sip_transport import Peer, SipTransport, advertised_host

log = structlog.get_logger(__name__)

MANSCDP = "Application/MANSCDP+xml"
SDP = "APPLICATION/SDP"
USER_AGENT = "GridHub"
RENEW_AT = 0.75
"""Share of the granted registration lifetime after which it is renewed."""
UNREGISTER_TIMEOUT = 2.0
ACK_TIMEOUT = 32.0
"""Seconds we wait for the ACK of our 200 to an INVITE (64*T1) before hanging up."""
ALLOW = "INVITE, ACK, BYE, CANCEL, MESSAGE, OPTIONS"
PS_ENCODINGS = ("PS", "MP2P")
ALARM_PRIORITY = {"critical": 1, "warning": 2, "info": 4}
"""Our alarm levels → GB/T 28181 AlarmPriority (1 is the most urgent)."""
ALARM_METHOD_VIDEO = 5
"""AlarmMethod 5: video alarm (GB/T 28181-2016 A.2.4.8)."""

Steer = Callable[[CameraRecord, PtzCommand], Awaitable[None]]
"""Moves a camera (ONVIF or GB/T 28181), raising on failure."""


@dataclass(slots=True)
class CascadeCounters:
    """What the cascade did (/metrics, tests)."""

    registrations: int = 0
    registration_failures: int = 0
    keepalives: int = 0
    keepalive_failures: int = 0
    catalog_queries: int = 0
    catalog_messages: int = 0
    invites: dict[str, int] = field(default_factory=dict)
    ptz_commands: int = 0
    alarms_sent: int = 0
    rejected: dict[str, int] = field(default_factory=dict)

    bump = staticmethod(count)


@dataclass(eq=False)
class _Stream:
    call_id: str
    camera: SharedCamera
    dialog: Dialog
    peer: Peer
    push: PsPush
    release: Callable[[], None]
    acked: asyncio.Event = field(default_factory=asyncio.Event)
    ended: bool = False


class CascadeAdapter:
    """The hub as a lower platform of the video network (see the module docstring)."""

    name = "videonet-cascade"

    def __init__(
        self,
        settings: CascadeSettings,
        directory: CameraDirectory,
        streams: StreamManager,
        tasks: TaskRegistry,
        steer: Steer | None = None,
    ) -> None:
        self.settings = settings
        self.directory = directory
        self.streams = streams
        self.tasks = tasks
        self.steer = steer
        self.counters = CascadeCounters()
        self.push_counters = PushCounters()
        self.transport = SipTransport(
            settings.host, settings.port, self._on_request,
            max_message=settings.max_message_bytes,
        )  # fmt: skip
        self.ports = PortPool(settings.media_port_min, settings.media_port_max)
        self.address = ""
        self.registered = False
        self.registered_at: float | None = None
        self._upper: Peer | None = None
        self._call_id = ""
        self._cseq = 0
        self._sn = 0
        self._loop: asyncio.Task[None] | None = None
        self._streams: dict[str, _Stream] = {}
        self._stopping = False

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Registered to the upper platform."""
        return self.registered

    @property
    def port(self) -> int:
        """Our SIP port (after start)."""
        return self.transport.port

    async def start(self) -> None:
        """Bind our SIP port and start registering (in the background: a gateway that is
        down must not hold up the hub; readiness shows it)."""
        await bind_sip(self.transport, self.settings.host, self.settings.port)
        self.address = advertised_host(self.settings.sip_address, self.settings.host)
        self._call_id = new_call_id(self.address)
        self._loop = self.tasks.spawn(self._run(), name="videonet cascade registration")
        log.info("video network cascade started", port=self.port,
                 upper=f"{self.settings.upper_host}:{self.settings.upper_port}")  # fmt: skip

    async def stop(self) -> None:
        """Hang up cascaded streams, unregister (briefly), close the SIP port."""
        if self._stopping:
            return
        self._stopping = True
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.wait([self._loop], timeout=2)
        for stream in list(self._streams.values()):
            await self._end(stream, send_bye=True)
        if self.registered:
            try:
                await asyncio.wait_for(self._register(0), UNREGISTER_TIMEOUT)
            except (TimeoutError, ConnectionError, OSError, SipParseError):
                log.info("unregistration from the upper platform not answered")
        self.registered = False
        await self.transport.stop()

    # -- registration --------------------------------------------------------------------

    async def _run(self) -> None:
        settings = self.settings
        delay = settings.retry_min_delay
        while True:
            granted = await self._try_register()
            if granted is None:
                self._set_registered(False, "registration failed")
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, settings.retry_max_delay)
                continue
            delay = settings.retry_min_delay
            self._set_registered(True, "registered")
            if not await self._keep_alive(granted):
                self._set_registered(False, "keepalives unanswered")

    def _set_registered(self, registered: bool, why: str) -> None:
        if registered != self.registered:
            log.info("video network registration", registered=registered, why=why)
        self.registered = registered
        self.registered_at = time.monotonic() if registered else None

    async def _try_register(self) -> int | None:
        try:
            response = await self._register(self.settings.register_expires)
        except (TimeoutError, ConnectionError, OSError) as err:
            self.counters.registration_failures += 1
            log.info("upper platform unreachable", error=str(err) or type(err).__name__)
            self._upper = None
            return None
        if response.status >= 300:
            self.counters.registration_failures += 1
            log.warning("upper platform refused registration", status=response.status,
                        reason=response.reason)  # fmt: skip
            return None
        self.counters.registrations += 1
        return _granted(response, self.settings.register_expires)

    async def _upper_peer(self) -> Peer:
        settings = self.settings
        peer = self._upper
        if peer is not None and (peer.connection is None or not peer.connection.closed.is_set()):
            return peer
        if settings.transport == "tcp":
            peer = await self.transport.connect(
                settings.upper_host, settings.upper_port, settings.request_timeout
            )
        else:
            peer = Peer("udp", settings.upper_host, settings.upper_port)
        self._upper = peer
        return peer

    def _via(self) -> Via:
        params: dict[str, str | None] = {"branch": new_branch(), "rport": None}
        return Via(self.settings.transport.upper(), self.address, self.port, params)

    @property
    def _aor(self) -> str:
        return f"sip:{self.settings.sip_id}@{self.settings.upper_domain}"

    @property
    def _contact(self) -> str:
        return f"<sip:{self.settings.sip_id}@{self.address}:{self.port}>"

    def _request(self, method: str, uri: str, to: str, call_id: str) -> SipRequest:
        self._cseq += 1
        return make_request(
            method, uri, via=self._via(), from_uri=self._aor, to_uri=to, call_id=call_id,
            cseq=self._cseq, extra=(("User-Agent", USER_AGENT),),
        )  # fmt: skip

    async def _register(self, expires: int) -> SipResponse:
        settings = self.settings
        uri = f"sip:{settings.upper_id}@{settings.upper_domain}"
        peer = await self._upper_peer()
        request = self._register_request(uri, expires)
        response = await self._send(request, peer)
        if response.status in (401, 407):
            name = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
            header = response.headers.get(name)
            if header is None:
                return response
            try:
                challenge = parse_challenge(header)
            except SipParseError:
                return response
            request = self._register_request(uri, expires)
            auth = authorization_value(
                challenge, "REGISTER", uri, settings.username or settings.sip_id,
                settings.password.get_secret_value(),
            )  # fmt: skip
            request.headers.add("Authorization" if response.status == 401 else
                                "Proxy-Authorization", auth)  # fmt: skip
            response = await self._send(request, peer)
        return response

    def _register_request(self, uri: str, expires: int) -> SipRequest:
        request = self._request("REGISTER", uri, self._aor, self._call_id)
        request.headers.add("Contact", self._contact)
        request.headers.add("Expires", str(expires))
        return request

    async def _send(self, request: SipRequest, peer: Peer) -> SipResponse:
        return await asyncio.wait_for(
            self.transport.request(request, peer), self.settings.request_timeout
        )

    async def _keep_alive(self, granted: int) -> bool:
        """Keepalives until the registration is due for renewal (True) or the upper stopped
        answering them (False)."""
        settings = self.settings
        renew_at = time.monotonic() + granted * RENEW_AT
        misses = 0
        while True:
            wait = min(settings.keepalive_interval, renew_at - time.monotonic())
            if wait > 0:
                await asyncio.sleep(wait)
            if time.monotonic() >= renew_at:
                return True
            if await self._message_upper(build_keepalive(self._next_sn(), settings.sip_id)):
                self.counters.keepalives += 1
                misses = 0
                continue
            self.counters.keepalive_failures += 1
            misses += 1
            if misses >= settings.keepalive_misses:
                return False

    def _next_sn(self) -> int:
        self._sn = self._sn % (2**31 - 1) + 1
        return self._sn

    async def _message_upper(self, body: bytes) -> bool:
        """A MESSAGE to the upper platform; whether it answered 2xx."""
        settings = self.settings
        uri = f"sip:{settings.upper_id}@{settings.upper_domain}"
        try:
            peer = await self._upper_peer()
            request = self._request("MESSAGE", uri, uri, new_call_id(self.address))
            request.headers.add("Content-Type", MANSCDP)
            request.body = body
            response = await self._send(request, peer)
        except (TimeoutError, ConnectionError, OSError):
            return False
        return 200 <= response.status < 300

    # -- requests from the upper platform ------------------------------------------------

    def _on_request(self, request: SipRequest, peer: Peer) -> None:
        method = request.method
        if method == "ACK":
            stream = self._streams.get(request.call_id)
            if stream is not None:
                stream.acked.set()
            return
        if (request.from_addr.uri.user or "") != self.settings.upper_id:
            self.counters.bump(self.counters.rejected, "not_upper")
            self.transport.reply(request, peer, 403, "Forbidden")
            return
        if method == "MESSAGE":
            self._message(request, peer)
        elif method == "INVITE":
            self.tasks.spawn(self._invite(request, peer), name="videonet cascade invite")
        elif method == "BYE":
            self._bye(request, peer)
        elif method == "CANCEL":
            self.transport.reply(request, peer, 481, "Call/Transaction Does Not Exist")
        elif method == "OPTIONS":
            self.transport.reply(request, peer, 200, headers=(("Allow", ALLOW),))
        else:
            self.transport.reply(request, peer, 405, headers=(("Allow", ALLOW),))

    def _message(self, request: SipRequest, peer: Peer) -> None:
        try:
            message = parse_manscdp(request.body)
        except ManscdpError as err:
            self.counters.bump(self.counters.rejected, "malformed_body")
            self.transport.reply(request, peer, 400, str(err)[:100])
            return
        if message.root == "Query" and message.cmd_type == "Catalog":
            self.transport.reply(request, peer, 200)
            self.counters.catalog_queries += 1
            self.tasks.spawn(self._catalog(message), name="videonet cascade catalog")
        elif message.root == "Query" and message.cmd_type == "DeviceInfo":
            self.transport.reply(request, peer, 200)
            self.tasks.spawn(self._device_info(message), name="videonet cascade device info")
        elif message.root == "Control" and message.cmd_type == "DeviceControl":
            self.tasks.spawn(self._control(request, peer, message), name="videonet cascade ptz")
        elif message.root == "Notify" and message.cmd_type == "Keepalive":
            self.transport.reply(request, peer, 200)
        else:
            self.counters.bump(self.counters.rejected, "unsupported_command")
            self.transport.reply(request, peer, 501, "Not Implemented")

    async def _catalog(self, query: ManscdpMessage) -> None:
        cameras = await self.directory.cameras()
        items = [self.directory.item(camera) for camera in cameras]
        batch = self.settings.catalog_batch
        chunks = [items[i : i + batch] for i in range(0, len(items), batch)] or [[]]
        for chunk in chunks:
            body = build_catalog_response(query.sn, self.settings.sip_id, len(items), chunk)
            if not await self._message_upper(body):
                log.warning("upper platform did not take a catalog message", sn=query.sn)
                return
            self.counters.catalog_messages += 1
        log.info("catalog sent upward", cameras=len(items), messages=len(chunks))

    async def _device_info(self, query: ManscdpMessage) -> None:
        cameras = await self.directory.cameras()
        body = build_device_info_response(
            query.sn, self.settings.sip_id, "Grid Hub", "GridHub", "cascade", "1",
            channel=len(cameras),
        )  # fmt: skip
        await self._message_upper(body)

    async def _control(self, request: SipRequest, peer: Peer, message: ManscdpMessage) -> None:
        camera = await self.directory.find(message.device_id)
        if camera is None:
            self.counters.bump(self.counters.rejected, "unknown_channel")
            self.transport.reply(request, peer, 404, "Not Found")
            return
        code = message.fields.get("PTZCmd")
        if code is None:
            self.transport.reply(request, peer, 200)  # other controls: acknowledged, no effect
            return
        try:
            command = parse_ptz(code)
        except ValueError as err:
            self.counters.bump(self.counters.rejected, "bad_ptz")
            self.transport.reply(request, peer, 400, str(err)[:100])
            return
        self.transport.reply(request, peer, 200)
        result = "OK"
        if self.steer is None or not camera.record.ptz:
            result = "ERROR"
        else:
            try:
                await self.steer(camera.record, command)
                self.counters.ptz_commands += 1
            except Exception as err:  # a camera's failure is reported upward, nothing more
                log.info("PTZ from the upper platform failed", camera_id=camera.record.id,
                         error=str(err))  # fmt: skip
                result = "ERROR"
        body = build_response("DeviceControl", message.sn, message.device_id, result)
        await self._message_upper(body)

    # -- live streams --------------------------------------------------------------------

    async def _invite(self, request: SipRequest, peer: Peer) -> None:
        bump = self.counters.bump
        table = self.counters.invites
        self.transport.reply(request, peer, 100, "Trying")  # the camera may take seconds
        channel_id = request_user(request)
        if len(self._streams) >= self.settings.max_streams:
            bump(table, "busy")
            self.transport.reply(request, peer, 486, "Busy Here")
            return
        try:
            offer = parse_sdp(request.body)
            media = _ps_video(offer)
        except (SdpError, ValueError) as err:
            bump(table, "bad_offer")
            self.transport.reply(request, peer, 488, f"Not Acceptable Here: {err}"[:100])
            return
        camera = await self.directory.find(channel_id)
        if camera is None:
            bump(table, "unknown_channel")
            self.transport.reply(request, peer, 404, "Not Found")
            return
        ssrc_text = (offer.ssrc or "").strip() or "0"
        try:
            ssrc = ssrc_value(ssrc_text)
        except ValueError:
            bump(table, "bad_offer")
            self.transport.reply(request, peer, 488, "Not Acceptable Here: bad y= SSRC")
            return
        record = camera.record
        try:
            handle, viewer, info = await self.streams.open_stream(record.id, record.source_url)
        except MediaError as err:
            bump(table, "camera_unavailable")
            self.transport.reply(request, peer, 503, err.message[:100])
            return

        def release() -> None:
            self.streams.release(handle, viewer)

        bind = self.settings.host if self.settings.host not in ("", "::") else "0.0.0.0"
        push = PsPush(viewer, info, ssrc, self.push_counters, self.ports, bind)
        host = media.connection or offer.connection or peer.host
        transport = _media_transport(media)
        try:
            if transport == "udp":
                port = await push.open_udp(host, media.port)
            elif transport == "tcp_active":
                port = await push.connect_tcp(host, media.port, self.settings.connect_timeout)
            else:
                port = await push.listen_tcp()
        except PushError as err:
            push.close()
            release()
            bump(table, "media_failed")
            self.transport.reply(request, peer, 503, str(err)[:100])
            return
        local_tag = new_tag()
        contact = f"sip:{self.settings.sip_id}@{self.address}:{self.port}"
        dialog = Dialog.from_uas(request, local_tag, contact)
        stream = _Stream(request.call_id, camera, dialog, peer, push, release)
        self._streams[stream.call_id] = stream
        answer = self._answer(media, transport, port, ssrc_text)
        self.transport.reply(
            request, peer, 200, headers=(("Contact", f"<{contact}>"),), body=answer,
            content_type=SDP, to_tag=local_tag,
        )  # fmt: skip
        bump(table, "ok")
        log.info("cascaded stream started", camera_id=record.id, channel=channel_id,
                 transport=transport, ssrc=ssrc_text)  # fmt: skip
        await self._serve(stream)

    def _answer(self, media: MediaDescription, transport: str, port: int, ssrc: str) -> bytes:
        media_ip = self.settings.media_ip or self.address
        attributes: list[tuple[str, str | None]] = [("sendonly", None), ("rtpmap", "96 PS/90000")]
        proto = "RTP/AVP"
        if transport != "udp":
            proto = "TCP/RTP/AVP"
            setup = "active" if transport == "tcp_active" else "passive"
            attributes += [("setup", setup), ("connection", "new")]
        answer = MediaDescription("video", port, proto, ["96"], attributes)
        description = SessionDescription(
            origin_user=self.settings.sip_id, session_id="0", session_version="0",
            origin_address=media_ip, session_name="Play", connection=media_ip,
            media=[answer], ssrc=ssrc,
        )  # fmt: skip
        del media
        return description.encode()

    async def _serve(self, stream: _Stream) -> None:
        why = "ended"
        try:
            try:
                await asyncio.wait_for(stream.acked.wait(), ACK_TIMEOUT)
            except TimeoutError:
                why = "no_ack"
                return
            if not await stream.push.wait_connected(self.settings.connect_timeout):
                why = "no_media_connection"
                return
            why = await stream.push.run()
        finally:
            if not stream.ended:
                log.info("cascaded stream ended", camera_id=stream.camera.record.id, why=why)
                await self._end(stream, send_bye=why not in ("stopped",))

    def _bye(self, request: SipRequest, peer: Peer) -> None:
        stream = self._streams.get(request.call_id)
        if stream is None:
            self.transport.reply(request, peer, 481, "Call/Transaction Does Not Exist")
            return
        self.transport.reply(request, peer, 200)
        if self._close(stream):
            log.info("cascaded stream hung up by the upper platform",
                     camera_id=stream.camera.record.id)  # fmt: skip

    def _close(self, stream: _Stream) -> bool:
        """Stop sending, free the port and the camera's viewer; False if already done."""
        if stream.ended:
            return False
        stream.ended = True
        self._streams.pop(stream.call_id, None)
        stream.push.stop()
        stream.push.close()
        stream.release()
        return True

    async def _end(self, stream: _Stream, send_bye: bool) -> None:
        if not self._close(stream) or not send_bye:
            return
        request = stream.dialog.request("BYE", self._via())
        try:
            await self._send(request, stream.peer)
        except (TimeoutError, ConnectionError, OSError):
            log.info("no answer to our BYE", camera_id=stream.camera.record.id)

    @property
    def streams_open(self) -> int:
        """Cascaded streams running now."""
        return len(self._streams)

    # -- alarms --------------------------------------------------------------------------

    async def alarm(self, record: CameraRecord, event: CameraAlarm) -> None:
        """A camera alarm, sent upward as an Alarm notification (a registry alarm hook)."""
        if not self.registered:
            return
        camera = next((c for c in await self.directory.cameras() if c.record.id == record.id), None)
        if camera is None:
            return
        body = build_alarm_notify(
            self._next_sn(), camera.channel_id, ALARM_PRIORITY.get(event.level, 4),
            ALARM_METHOD_VIDEO, _local_time(event.at), event.description or event.kind,
            longitude=record.lon, latitude=record.lat,
        )  # fmt: skip
        if await self._message_upper(body):
            self.counters.alarms_sent += 1


def request_user(request: SipRequest) -> str:
    """The user part of the Request-URI ('' when there is none or it does not parse)."""
    try:
        return parse_uri(request.uri).user or ""
    except SipParseError:
        return ""


async def bind_sip(transport: SipTransport, host: str, port: int) -> None:
    """Open the SIP port; NotReadyError (the hub retries) when it is taken."""
    try:
        await transport.start()
    except OSError as err:
        raise NotReadyError(f"cannot bind the SIP port {host}:{port}: {err}") from err


def _granted(response: SipResponse, asked: int) -> int:
    value = response.headers.get("Expires")
    if value is not None and value.strip().isdigit():
        return max(int(value.strip()), 1)
    return asked


def _ps_video(offer: SessionDescription) -> MediaDescription:
    for media in offer.media:
        if media.kind != "video" or media.port == 0:
            continue
        for payload, (encoding, clock) in media.rtpmap().items():
            if (
                encoding.upper() in PS_ENCODINGS
                and clock == 90000
                and str(payload) in media.formats
            ):
                return media
        if "96" in media.formats and not media.rtpmap():
            return media  # GB/T 28181 devices often omit rtpmap: 96 is PS
    raise ValueError("no MPEG-PS video offered")


def _media_transport(media: MediaDescription) -> str:
    """Our side's role: the upper listens (setup:passive) → we connect (tcp_active)."""
    if not media.tcp:
        return "udp"
    return "tcp_passive" if media.setup == "active" else "tcp_active"


def _local_time(iso: str) -> str:
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso[:19]
    return moment.astimezone().strftime("%Y-%m-%dT%H:%M:%S")
