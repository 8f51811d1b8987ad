"""Live view signalling: the INVITE that asks a device for a channel's stream, the ACK, and
the BYE when the media plane lets the stream go. Implements streams.ps_pull.PsSignalling;
the media itself is received by streams/ps_pull.py."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from adapters.gb28181.requests import live_offer
from hub.cameras.devices import parse_channel_url
from protocols.gb28181.ssrc import SsrcAllocator, SsrcExhausted
from protocols.sip.dialog import Dialog, make_ack
from protocols.sip.message import SipRequest
from protocols.sip.sdp import SdpError, parse_sdp
from streams.ps_pull import MediaCall, MediaOffer, SignallingError

if TYPE_CHECKING:
    from adapters.gb28181.adapter import Gb28181Adapter
    from streams.sip_transport import Peer

log = structlog.get_logger(__name__)

BYE_TIMEOUT = 5.0


@dataclass(slots=True)
class _Call:
    device_id: str
    channel_id: str
    dialog: Dialog
    peer: Peer
    transport: str
    ended: bool = False


class LiveCalls:
    """The live streams the hub has asked devices for."""

    def __init__(self, adapter: Gb28181Adapter) -> None:
        self.adapter = adapter
        self.ssrcs = SsrcAllocator(adapter.settings.domain)
        self.calls: dict[str, _Call] = {}

    def allocate_ssrc(self) -> str:
        """A live SSRC not in use (``0`` + domain digits + sequence)."""
        try:
            return self.ssrcs.allocate(playback=False)
        except SsrcExhausted as err:
            raise SignallingError("every SSRC is in use") from err

    def release_ssrc(self, ssrc: str) -> None:
        """The stream ended: its SSRC may be handed out again."""
        self.ssrcs.release(ssrc)

    async def invite(self, url: str, offer: MediaOffer) -> MediaCall:
        """INVITE the channel; the device's media address and SSRC once it accepted."""
        adapter = self.adapter
        bump = adapter.counters.bump
        parts = parse_channel_url(url)
        if parts is None:
            raise SignallingError(f"not a GB/T 28181 channel: {url}")
        device_id, channel_id = parts
        device = adapter.devices.get(device_id)
        if device is None or not device.online:
            bump(adapter.counters.invites, "device_offline")
            raise SignallingError(f"device {device_id} is not registered or offline")
        sdp = live_offer(
            adapter.settings.sip_id, offer.media_ip, offer.media_port, offer.transport, offer.ssrc
        )
        peer = device.peer
        request = adapter.requests.invite(
            device_id, channel_id, peer.host, peer.port, peer.transport, sdp, offer.ssrc
        )
        try:
            response = await adapter.transport.request(request, peer)
        except (TimeoutError, ConnectionError) as err:
            bump(adapter.counters.invites, "timeout")
            raise SignallingError("no answer to the INVITE") from err
        if response.status >= 300:
            bump(adapter.counters.invites, "refused")
            adapter.transport.send_ack(make_ack(request, response), peer)
            raise SignallingError(f"{response.status} {response.reason}")
        dialog = Dialog.from_uac(request, response)
        adapter.transport.send_ack(make_ack(request, response, adapter.local.via(peer.transport)),
                                   peer)  # fmt: skip
        call = _Call(device_id, channel_id, dialog, peer, offer.transport)
        self.calls[dialog.call_id] = call
        try:
            answer = parse_sdp(response.body)
        except SdpError as err:
            bump(adapter.counters.invites, "bad_answer")
            self.hang_up(MediaCall(dialog.call_id, offer.ssrc, peer.host, None))
            raise SignallingError(f"the device's SDP answer is malformed: {err}") from err
        bump(adapter.counters.invites, "ok")
        media = next((m for m in answer.media if m.kind == "video"), None)
        host = (media.connection if media else None) or answer.connection or peer.host
        port = media.port if media else None
        ssrc = (answer.ssrc or offer.ssrc).strip()
        log.info("GB/T 28181 stream invited", device_id=device_id, channel=channel_id,
                 ssrc=ssrc, transport=offer.transport)  # fmt: skip
        return MediaCall(dialog.call_id, ssrc, host, port)

    def hang_up(self, call: MediaCall) -> None:
        """BYE in the background (the pull must not wait on a device that is gone)."""
        entry = self.calls.pop(call.call_id, None)
        if entry is None or entry.ended:
            return
        entry.ended = True
        self.adapter.tasks.spawn(self._bye(entry), name="gb28181 bye")

    def remote_bye(self, call_id: str) -> None:
        """The device ended a stream (its BYE was answered): nothing left to hang up."""
        entry = self.calls.get(call_id)
        if entry is not None:
            entry.ended = True

    async def _bye(self, call: _Call) -> None:
        adapter = self.adapter
        request: SipRequest = call.dialog.request("BYE", adapter.local.via(call.peer.transport))
        try:
            response = await asyncio.wait_for(
                adapter.transport.request(request, call.peer), BYE_TIMEOUT
            )
        except (TimeoutError, ConnectionError):
            log.info("no answer to BYE", device_id=call.device_id, channel=call.channel_id)
            return
        log.info("GB/T 28181 stream hung up", device_id=call.device_id, channel=call.channel_id,
                 status=response.status)  # fmt: skip
