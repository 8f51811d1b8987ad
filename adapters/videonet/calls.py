"""Video calls between consultation rooms and the video network's terminals, through the
network's SIP gateway. Call out: the host dials a terminal's SIP URI; the INVITE goes to the
gateway, and our digest credentials answer its challenge. Call in: a terminal dials a room
by its code (``sip:<room code>@hub``); only the gateway's address may call, and it must
authenticate with the configured credentials. Media is a :class:`~streams.sip_leg.SipLeg`:
H.264 (RFC 6184) both ways without re-encoding, G.711 or Opus audio with one mix of the room.

A call ends on BYE from either side, when the terminal's RTP stops (``rtp_timeout``), or
when the gateway stops answering OPTIONS pings (``gateway_misses``); the room carries on.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field

import structlog

from adapters.videonet.cascade import bind_sip, request_user
from hub.config import CallSettings
from hub.consultations.contract import RoomMediaError
from hub.consultations.media import ConsultationMedia
from hub.consultations.rooms import terminal_participant
from hub.consultations.service import ConsultationService
from hub.metric_families import count
from hub.tasks import TaskRegistry
from protocols.rtp.h264 import choose_h264
from protocols.sip.addresses import Via
from protocols.sip.dialog import Dialog, make_ack
from protocols.sip.digest import (
    NONCE_OK,
    NONCE_STALE,
    DigestChallenge,
    NonceBook,
    authorization_value,
    parse_challenge,
    parse_credentials,
    verify_response,
)
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
from streams.ps_pull import PortPool
from streams.sip_leg import LegCounters, LegError, LegMedia, SipLeg
from streams.sip_transport import Peer, SipTransport, advertised_host

log = structlog.get_logger(__name__)

SDP = "application/sdp"
USER_AGENT = "GridHub"
ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS"
NONCE_LIFETIME = 300.0
ACK_TIMEOUT = 32.0
BYE_TIMEOUT = 4.0
AUDIO_CODECS = {"PCMU": (0, 8000), "PCMA": (8, 8000), "OPUS": (111, 48000)}
"""What we take, with the payload type and clock we offer them at."""
OFFER_AUDIO = ("PCMU", "PCMA", "OPUS")
H264_OFFER = ((97, 1), (96, 0))
"""H.264 payload types we offer with their packetization-mode (mode 1 preferred)."""
H264_PROFILE = "42e01f"
"""Constrained baseline 3.1: what rooms carry (WebRTC's mandatory profile)."""
DIRECTION_OF_OURS = {
    "sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"
}  # fmt: skip
"""The terminal's SDP direction → ours."""


class CallError(Exception):
    """A call could not be set up: a SIP status and a reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


@dataclass(slots=True)
class CallCounters:
    """What the calls adapter did (/metrics, tests)."""

    calls: dict[str, int] = field(default_factory=dict)
    """Calls by direction and outcome, e.g. ``out_connected``, ``in_refused``."""
    ended: dict[str, int] = field(default_factory=dict)
    """Calls ended, by reason."""
    rejected: dict[str, int] = field(default_factory=dict)
    gateway_lost: int = 0

    bump = staticmethod(count)


@dataclass(eq=False)
class _Call:
    room_id: str
    participant_id: str
    uri: str
    direction: str
    leg: SipLeg
    peer: Peer
    dialog: Dialog | None = None
    acked: asyncio.Event = field(default_factory=asyncio.Event)
    ended: bool = False


@dataclass(frozen=True, slots=True)
class Negotiated:
    """What our side takes from a terminal's SDP (offer or answer)."""

    media: LegMedia
    video: MediaDescription | None
    audio: MediaDescription | None
    audio_codec: str
    profile_level_id: str


class CallAdapter:
    """Terminal calls (see the module docstring); the room service's ``TerminalCalls``."""

    name = "videonet-calls"

    def __init__(
        self,
        settings: CallSettings,
        service: ConsultationService,
        media: ConsultationMedia,
        tasks: TaskRegistry,
        counters: LegCounters | None = None,
    ) -> None:
        self.settings = settings
        self.service = service
        self.media = media
        self.tasks = tasks
        self.leg_counters = counters or LegCounters()
        self.counters = CallCounters()
        self.transport = SipTransport(
            settings.host, settings.port, self._on_request,
            max_message=settings.max_message_bytes,
        )  # fmt: skip
        self.ports = PortPool(settings.media_port_min, settings.media_port_max)
        self.address = ""
        self.gateway = Peer("udp", settings.gateway_host, settings.gateway_port)
        self._nonces = NonceBook(secrets.token_bytes(32), NONCE_LIFETIME)
        self._calls: dict[str, _Call] = {}
        self._cseq = 0
        self._watch: asyncio.Task[None] | None = None
        self._started = False

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """The SIP port is open."""
        return self._started

    @property
    def port(self) -> int:
        """Our SIP port (after start)."""
        return self.transport.port

    @property
    def calls(self) -> list[_Call]:
        """Calls up now."""
        return [c for c in self._calls.values() if not c.ended]

    async def start(self) -> None:
        """Open the SIP port; the room service calls through us from now on."""
        await bind_sip(self.transport, self.settings.host, self.settings.port)
        self.address = advertised_host(self.settings.sip_address, self.settings.host)
        self._started = True
        self._watch = self.tasks.spawn(self._watch_gateway(), name="videonet gateway watch")
        log.info("video network calls ready", port=self.port,
                 gateway=f"{self.settings.gateway_host}:{self.settings.gateway_port}")  # fmt: skip

    async def stop(self) -> None:
        """Hang up every call, close the SIP port. Safe to call twice."""
        if not self._started:
            return
        self._started = False
        if self._watch is not None:
            self._watch.cancel()
        for call in list(self._calls.values()):
            await self._end(call, "shutdown", send_bye=True, report=False)
        await self.transport.stop()

    # -- the room service's side ---------------------------------------------------------

    async def dial(self, room_id: str, participant_id: str, uri: str) -> None:
        """Call a terminal into a room; returns once it answered. RoomMediaError when not."""
        if not self._started:
            raise RoomMediaError("consultation.calls_unavailable", "calls are not running", 503)
        if len(self.calls) >= self.settings.max_calls:
            raise RoomMediaError("consultation.too_many_calls", "too many calls at once", 503)
        uri = self.target_uri(uri)
        leg = self._leg(room_id, participant_id)
        try:
            video_port, audio_port = await leg.bind(self._bind_host, self.ports)
        except LegError as err:
            await leg.close()
            raise RoomMediaError("consultation.call_failed", str(err), 503) from err
        call = _Call(room_id, participant_id, uri, "out", leg, self.gateway)
        self._calls[participant_id + "@" + room_id] = call
        try:
            negotiated = await self._invite(call, self._offer(video_port, audio_port))
        except CallError as err:
            self._forget(call)
            await leg.close()
            self.counters.bump(self.counters.calls, "out_failed")
            raise RoomMediaError("consultation.call_failed", str(err), 502) from err
        except BaseException:
            self._forget(call)
            await leg.close()
            raise
        if call.ended:  # hung up (host, room end) while it rang: end the answered call
            await self._bye(call)
            raise RoomMediaError("consultation.call_failed", "hung up before it answered", 409)
        self.counters.bump(self.counters.calls, "out_connected")
        leg.start(negotiated.media)
        log.info("terminal called into room", room=room_id, uri=uri,
                 audio=negotiated.audio_codec, profile=negotiated.profile_level_id)  # fmt: skip

    async def hang_up(self, room_id: str, participant_id: str) -> None:
        """End a terminal's call (BYE); nothing when there is none."""
        call = self._calls.get(participant_id + "@" + room_id)
        if call is not None:
            await self._end(call, "removed", send_bye=True, report=False)

    async def hang_up_room(self, room_id: str) -> None:
        """End every call of a room."""
        for call in [c for c in self._calls.values() if c.room_id == room_id]:
            await self._end(call, "room_ended", send_bye=True, report=False)

    def show(self, room_id: str, participant_id: str, source_id: str | None) -> bool:
        """The host's pick of what a terminal sees (None: the active speaker)."""
        call = self._calls.get(participant_id + "@" + room_id)
        if call is None:
            return False
        call.leg.show(source_id)
        return True

    def target_uri(self, uri: str) -> str:
        """A dialled terminal as a SIP URI: a bare number gets the dial domain."""
        if uri.lower().startswith(("sip:", "sips:")):
            return uri
        domain = self.settings.dial_domain or (
            f"{self.settings.gateway_host}:{self.settings.gateway_port}"
        )
        return f"sip:{uri}@{domain}"

    # -- outgoing calls ------------------------------------------------------------------

    @property
    def _bind_host(self) -> str:
        host = self.settings.host
        return host if host not in ("", "::") else "0.0.0.0"

    @property
    def _media_ip(self) -> str:
        return self.address

    def _leg(self, room_id: str, participant_id: str) -> SipLeg:
        room = self.media.room(room_id)

        def lost(reason: str) -> None:
            call = self._calls.get(participant_id + "@" + room_id)
            if call is not None and call.leg is leg:
                self.tasks.spawn(self._end(call, reason, send_bye=True, report=True),
                                 name="videonet call lost")  # fmt: skip

        leg = SipLeg(
            room, participant_id, self.leg_counters, rtp_timeout=self.settings.rtp_timeout,
            keyframe_interval=self.settings.keyframe_interval, on_lost=lost,
        )  # fmt: skip
        return leg

    def _via(self) -> Via:
        params: dict[str, str | None] = {"branch": new_branch(), "rport": None}
        return Via("UDP", self.address, self.port, params)

    @property
    def _local_uri(self) -> str:
        return f"sip:{self.settings.local_user}@{self.address}:{self.port}"

    def _new_invite(self, call: _Call, body: bytes, call_id: str, from_tag: str) -> SipRequest:
        self._cseq += 1
        contact = f"<{self._local_uri}>"
        extra = (("Contact", contact), ("User-Agent", USER_AGENT), ("Allow", ALLOW),
                 ("Content-Type", SDP))  # fmt: skip
        return make_request(
            "INVITE", call.uri, via=self._via(), from_uri=self._local_uri, to_uri=call.uri,
            call_id=call_id, cseq=self._cseq, from_tag=from_tag, extra=extra, body=body,
        )  # fmt: skip

    async def _invite(self, call: _Call, offer: bytes) -> Negotiated:
        settings = self.settings
        call_id, tag = new_call_id(self.address), new_tag()
        request = self._new_invite(call, offer, call_id, tag)
        response = await self._send_invite(request)
        if response.status in (401, 407):
            self.transport.send_ack(make_ack(request, response), self.gateway)
            name = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
            header = response.headers.get(name)
            if header is None:
                raise CallError(response.status, "challenged without a challenge")
            try:
                challenge = parse_challenge(header)
            except SipParseError as err:
                raise CallError(response.status, f"unreadable challenge: {err}") from err
            request = self._new_invite(call, offer, call_id, tag)
            request.headers.add(
                "Authorization" if response.status == 401 else "Proxy-Authorization",
                authorization_value(challenge, "INVITE", call.uri, settings.username,
                                    settings.password.get_secret_value()),
            )  # fmt: skip
            response = await self._send_invite(request)
        if response.status >= 300:
            self.transport.send_ack(make_ack(request, response), self.gateway)
            raise CallError(response.status, response.reason)
        dialog = Dialog.from_uac(request, response)
        call.dialog = dialog
        self.transport.send_ack(make_ack(request, response, self._via()), self.gateway)
        try:
            answer = parse_sdp(response.body)
            negotiated = negotiate(answer, self.gateway.host)
        except (SdpError, ValueError) as err:
            await self._bye(call)
            raise CallError(488, f"unusable answer: {err}") from err
        return negotiated

    async def _send_invite(self, request: SipRequest) -> SipResponse:
        try:
            return await asyncio.wait_for(
                self.transport.request(request, self.gateway), self.settings.ring_timeout
            )
        except (TimeoutError, ConnectionError) as err:
            raise CallError(408, "no answer from the gateway or terminal") from err

    def _offer(self, video_port: int, audio_port: int) -> bytes:
        audio_formats = [str(AUDIO_CODECS[c][0]) for c in OFFER_AUDIO]
        audio_attrs: list[tuple[str, str | None]] = [
            ("rtpmap", "0 PCMU/8000"), ("rtpmap", "8 PCMA/8000"), ("rtpmap", "111 opus/48000/2"),
            ("ptime", "20"), ("sendrecv", None),
        ]  # fmt: skip
        video_attrs: list[tuple[str, str | None]] = []
        for payload, mode in H264_OFFER:
            video_attrs += [
                ("rtpmap", f"{payload} H264/90000"),
                ("fmtp", f"{payload} profile-level-id={H264_PROFILE};packetization-mode={mode}"),
            ]
        video_attrs += [("rtcp-fb", "* nack pli"), ("rtcp-fb", "* ccm fir"), ("sendrecv", None)]
        media = [
            MediaDescription("audio", audio_port, "RTP/AVP", audio_formats, audio_attrs),
            MediaDescription("video", video_port, "RTP/AVP", [str(p) for p, _ in H264_OFFER],
                             video_attrs),
        ]  # fmt: skip
        return self._session(media).encode()

    def _session(self, media: list[MediaDescription]) -> SessionDescription:
        return SessionDescription(
            origin_user="gridhub", session_id=str(int(time.time())), session_version="1",
            origin_address=self._media_ip, session_name="Grid Hub consultation",
            connection=self._media_ip, media=media,
        )  # fmt: skip

    # -- incoming requests ---------------------------------------------------------------

    def _on_request(self, request: SipRequest, peer: Peer) -> None:
        method = request.method
        if method == "ACK":
            call = self._by_call_id(request.call_id)
            if call is not None:
                call.acked.set()
            return
        if method == "BYE":
            self._remote_bye(request, peer)
        elif method == "INVITE":
            self.tasks.spawn(self._incoming(request, peer), name="videonet call in")
        elif method == "OPTIONS":
            self.transport.reply(request, peer, 200, headers=(("Allow", ALLOW),))
        elif method == "CANCEL":
            self.transport.reply(request, peer, 481, "Call/Transaction Does Not Exist")
        else:
            self.transport.reply(request, peer, 405, headers=(("Allow", ALLOW),))

    def _by_call_id(self, call_id: str) -> _Call | None:
        for call in self._calls.values():
            if call.dialog is not None and call.dialog.call_id == call_id:
                return call
        return None

    def _authenticated(self, request: SipRequest, peer: Peer) -> bool:
        """Whether the INVITE comes from the gateway with valid credentials; answers it
        (401 challenge or 403) when not."""
        settings = self.settings
        bump = self.counters.bump
        if peer.host != settings.gateway_host:
            bump(self.counters.rejected, "not_gateway")
            self.transport.reply(request, peer, 403, "Forbidden")
            return False
        value = request.headers.get("Authorization")
        if value is None:
            bump(self.counters.rejected, "challenged")
            self._challenge(request, peer, stale=False)
            return False
        try:
            credentials = parse_credentials(value)
        except SipParseError:
            bump(self.counters.rejected, "bad_credentials")
            self.transport.reply(request, peer, 400, "Bad Authorization")
            return False
        check = self._nonces.check(credentials, time.time())
        if check != NONCE_OK:
            self._challenge(request, peer, stale=check == NONCE_STALE)
            return False
        if not (
            credentials.username == settings.username
            and credentials.realm == settings.realm
            and verify_response(credentials, "INVITE", settings.password.get_secret_value())
        ):
            bump(self.counters.rejected, "forbidden")
            log.warning("call in with wrong credentials", address=peer.host)
            self.transport.reply(request, peer, 403, "Forbidden")
            return False
        return True

    def _challenge(self, request: SipRequest, peer: Peer, stale: bool) -> None:
        challenge = DigestChallenge(
            realm=self.settings.realm, nonce=self._nonces.issue(time.time()), stale=stale
        )
        self.transport.reply(
            request, peer, 401, headers=(("WWW-Authenticate", challenge.header_value()),)
        )

    async def _incoming(self, request: SipRequest, peer: Peer) -> None:
        existing = self._by_call_id(request.call_id)
        if existing is not None:
            if peer.host != existing.peer.host:
                self.counters.bump(self.counters.rejected, "not_gateway")
                self.transport.reply(request, peer, 403, "Forbidden")
                return
            self._reinvite(existing, request, peer)
            return
        if not self._authenticated(request, peer):
            return
        self.transport.reply(request, peer, 100, "Trying")
        bump = self.counters.bump
        if len(self.calls) >= self.settings.max_calls:
            bump(self.counters.calls, "in_busy")
            self.transport.reply(request, peer, 486, "Busy Here")
            return
        try:
            offer = parse_sdp(request.body)
            negotiated = negotiate(offer, peer.host)
        except (SdpError, ValueError) as err:
            bump(self.counters.calls, "in_no_codec")
            self.transport.reply(request, peer, 488, f"Not Acceptable Here: {err}"[:100])
            return
        code = request_user(request)
        room_id = await self.service.room_by_code(code) if code else None
        if room_id is None:
            bump(self.counters.calls, "in_unknown_room")
            self.transport.reply(request, peer, 404, "No Such Room")
            return
        caller = str(request.from_addr.uri)
        pid = terminal_participant(caller)
        key = pid + "@" + room_id
        if key in self._calls:
            bump(self.counters.calls, "in_busy")
            self.transport.reply(request, peer, 486, "Already In The Room")
            return
        leg = self._leg(room_id, pid)
        try:
            video_port, audio_port = await leg.bind(self._bind_host, self.ports)
        except LegError:
            await leg.close()
            self.transport.reply(request, peer, 503, "No Media Ports")
            return
        name = request.from_addr.display or ""
        if not await self.service.terminal_connected(room_id, pid, caller, name, "in"):
            await leg.close()
            bump(self.counters.calls, "in_refused")
            self.transport.reply(request, peer, 480, "Room Full Or Ended")
            return
        tag = new_tag()
        call = _Call(room_id, pid, caller, "in", leg, peer)
        call.dialog = Dialog.from_uas(request, tag, self._local_uri)
        self._calls[key] = call
        answer = self._answer(offer, negotiated, video_port, audio_port)
        self.transport.reply(
            request, peer, 200, headers=(("Contact", f"<{self._local_uri}>"),), body=answer,
            content_type=SDP, to_tag=tag,
        )  # fmt: skip
        bump(self.counters.calls, "in_connected")
        leg.start(negotiated.media)
        log.info("terminal called into room", room=room_id, caller=caller,
                 audio=negotiated.audio_codec)  # fmt: skip
        try:
            await asyncio.wait_for(call.acked.wait(), ACK_TIMEOUT)
        except TimeoutError:
            await self._end(call, "no_ack", send_bye=True, report=True)

    def _reinvite(self, call: _Call, request: SipRequest, peer: Peer) -> None:
        """A re-INVITE in a call (a session refresh): answered with the media we already
        have; a change of codec or address is not taken up (the call goes on as it was)."""
        ports = call.leg.local_ports
        try:
            offer = parse_sdp(request.body)
            chosen = negotiate(offer, peer.host)
        except (SdpError, ValueError):
            self.transport.reply(request, peer, 488, "Not Acceptable Here")
            return
        if ports is None or call.dialog is None:
            self.transport.reply(request, peer, 491, "Request Pending")
            return
        answer = self._answer(offer, chosen, *ports)
        self.transport.reply(
            request, peer, 200, headers=(("Contact", f"<{self._local_uri}>"),), body=answer,
            content_type=SDP, to_tag=call.dialog.local_tag,
        )  # fmt: skip

    def _answer(
        self, offer: SessionDescription, chosen: Negotiated, video_port: int, audio_port: int
    ) -> bytes:
        media: list[MediaDescription] = []
        for section in offer.media:
            if section is chosen.video:
                payload = chosen.media.video_payload_type
                attrs: list[tuple[str, str | None]] = [
                    ("rtpmap", f"{payload} H264/90000"),
                    ("fmtp", f"{payload} profile-level-id={chosen.profile_level_id};"
                             f"packetization-mode={chosen.media.packetization_mode}"),
                    ("rtcp-fb", f"{payload} nack pli"), ("rtcp-fb", f"{payload} ccm fir"),
                    (chosen.media.video_direction, None),
                ]  # fmt: skip
                media.append(MediaDescription("video", video_port, "RTP/AVP", [str(payload)],
                                              attrs))  # fmt: skip
            elif section is chosen.audio:
                payload = chosen.media.audio_payload_type
                rtpmap = next(
                    (v for n, v in section.attributes
                     if n == "rtpmap" and v and v.split(" ", 1)[0] == str(payload)),
                    f"{payload} {chosen.audio_codec}/8000",
                )  # fmt: skip
                attrs = [("rtpmap", rtpmap), ("ptime", "20"), (chosen.media.audio_direction, None)]
                media.append(MediaDescription("audio", audio_port, "RTP/AVP", [str(payload)],
                                              attrs))  # fmt: skip
            else:  # refused (RFC 3264 6): port 0, the offer's formats
                media.append(MediaDescription(section.kind, 0, section.proto, section.formats))
        return self._session(media).encode()

    def _remote_bye(self, request: SipRequest, peer: Peer) -> None:
        call = self._by_call_id(request.call_id)
        if call is None:
            self.transport.reply(request, peer, 481, "Call/Transaction Does Not Exist")
            return
        self.transport.reply(request, peer, 200)
        self.tasks.spawn(self._end(call, "hung_up", send_bye=False, report=True),
                         name="videonet call ended")  # fmt: skip

    # -- ending --------------------------------------------------------------------------

    def _forget(self, call: _Call) -> None:
        key = call.participant_id + "@" + call.room_id
        if self._calls.get(key) is call:
            del self._calls[key]

    async def _end(self, call: _Call, reason: str, *, send_bye: bool, report: bool) -> None:
        if call.ended:
            return
        call.ended = True
        self._forget(call)
        self.counters.bump(self.counters.ended, reason)
        await call.leg.close()
        if send_bye:
            await self._bye(call)
        if report:
            await self.service.terminal_ended(call.room_id, call.participant_id, call.uri, reason)
        log.info("terminal call ended", room=call.room_id, uri=call.uri, reason=reason)

    async def _bye(self, call: _Call) -> None:
        if call.dialog is None:
            return
        request = call.dialog.request("BYE", self._via())
        try:
            await asyncio.wait_for(self.transport.request(request, call.peer), BYE_TIMEOUT)
        except (TimeoutError, ConnectionError):
            log.info("no answer to our BYE", uri=call.uri)

    async def _watch_gateway(self) -> None:
        """While calls are up, ping the gateway; when it stops answering, drop them all."""
        settings = self.settings
        misses = 0
        while True:
            await asyncio.sleep(settings.gateway_check_interval)
            if not self.calls:
                misses = 0
                continue
            if await self._ping():
                misses = 0
                continue
            misses += 1
            if misses < settings.gateway_misses:
                continue
            misses = 0
            self.counters.gateway_lost += 1
            log.warning("video network gateway lost: dropping its calls", calls=len(self.calls))
            for call in self.calls:
                await self._end(call, "gateway_lost", send_bye=False, report=True)

    async def _ping(self) -> bool:
        self._cseq += 1
        uri = f"sip:{self.settings.gateway_host}:{self.settings.gateway_port}"
        options = make_request(
            "OPTIONS", uri, via=self._via(), from_uri=self._local_uri, to_uri=uri,
            call_id=new_call_id(self.address), cseq=self._cseq,
        )  # fmt: skip
        try:
            response = await asyncio.wait_for(
                self.transport.request(options, self.gateway),
                self.settings.request_timeout,
            )
        except (TimeoutError, ConnectionError):
            return False
        return response.status < 500 or response.status == 501


def negotiate(description: SessionDescription, fallback_host: str) -> Negotiated:
    """Our side of a terminal's SDP: the first usable H.264 (constrained baseline and
    packetization-mode 1 preferred) and the first of G.711/Opus in its order. ValueError
    when neither audio nor video is usable."""
    video = audio = None
    choice = None
    codec, audio_pt = "", 0
    for section in description.media:
        if section.port == 0:
            continue
        if section.kind == "video" and video is None:
            offers = _h264_offers(section)
            choice = choose_h264(offers) if offers else None
            if choice is not None:
                video = section
        elif section.kind == "audio" and audio is None:
            picked = _audio_choice(section)
            if picked is not None:
                codec, audio_pt = picked
                audio = section
    if video is None and audio is None:
        raise ValueError("no common codec (H.264 video, G.711 or Opus audio)")
    host = description.connection or fallback_host

    def direction(section: MediaDescription | None) -> str:
        return DIRECTION_OF_OURS.get(section.direction, "sendrecv") if section else "inactive"

    media = LegMedia(
        remote_host=(video.connection if video else None) or (audio.connection if audio
                                                               else None) or host,
        video_port=video.port if video else None,
        video_payload_type=choice.payload_type if choice else 0,
        packetization_mode=choice.packetization_mode if choice else 1,
        audio_port=audio.port if audio else None,
        audio_payload_type=audio_pt,
        audio_codec=codec or "PCMU",
        video_direction=direction(video),
        audio_direction=direction(audio),
    )  # fmt: skip
    return Negotiated(media, video, audio, codec or "PCMU",
                      choice.profile_level_id if choice else H264_PROFILE)  # fmt: skip


def _h264_offers(section: MediaDescription) -> list[tuple[int, str]]:
    fmtp: dict[str, str] = {}
    for name, value in section.attributes:
        if name == "fmtp" and value:
            payload, _, params = value.strip().partition(" ")
            fmtp[payload] = params.strip()
    rtpmap = section.rtpmap()
    return [
        (int(fmt), fmtp.get(fmt, ""))
        for fmt in section.formats
        if fmt.isdigit() and rtpmap.get(int(fmt), ("", 0))[0].upper() == "H264"
        and rtpmap[int(fmt)][1] == 90000
    ]  # fmt: skip


def _audio_choice(section: MediaDescription) -> tuple[str, int] | None:
    rtpmap = section.rtpmap()
    for fmt in section.formats:
        if not fmt.isdigit():
            continue
        payload = int(fmt)
        name, clock = rtpmap.get(payload, ("", 0))
        if not name and payload in (0, 8):  # static payload types need no rtpmap
            name, clock = ("PCMU", 8000) if payload == 0 else ("PCMA", 8000)
        upper = name.upper()
        if upper in ("PCMU", "PCMA") and clock == 8000:
            return upper, payload
        if upper == "OPUS" and clock == 48000:
            return "opus", payload
    return None
