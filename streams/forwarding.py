"""The one place that reaches into aiortc's private state so that rooms forward encoded media.

aiortc's receiver reassembles complete encoded frames in its jitter buffer and hands them to
a decoder thread through a queue; its sender packetises ``av.Packet``s without encoding. A
room therefore forwards media by

* putting a tap where the decoder queue was: complete encoded frames go to the room's relay
  on the event loop and the decoder thread never receives one (it idles until the receiver
  stops, then ends the track as usual);
* handing those frames to other connections' senders as ``av.Packet``s;
* catching keyframe requests (PLI/FIR) a sender receives, which aiortc would turn into an
  encoder flag, and sending a PLI to the originating receiver instead.

This depends on aiortc's internals; the version is pinned in pyproject.toml and
:func:`check` (run at import and by tests/unit/test_forwarding_hooks.py) fails loudly when an
upgrade moves them.
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Awaitable, Callable
from typing import Any

import aiortc
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.rtcdtlstransport import RTCDtlsTransport

PINNED_AIORTC = "1.16.0"
_QUEUE = "_RTCRtpReceiver__decoder_queue"
_STARTED = "_RTCRtpReceiver__started"
_ACTIVE_SSRC = "_RTCRtpReceiver__active_ssrc"
_RTX_SSRC = "_RTCRtpReceiver__rtx_ssrc"
_RX_PACKETS = "_RTCDtlsTransport__rx_packets"

FrameSink = Callable[[str, bytes, int], None]
"""Called on the event loop with (mime type, encoded frame, RTP timestamp from 0)."""
LevelSink = Callable[[int], None]
"""Called with each audio packet's level in -dBov (0 loudest … 127 silence)."""


class HookError(RuntimeError):
    """aiortc no longer looks the way this module expects."""


def check() -> None:
    """Raise :class:`HookError` unless aiortc's internals are the ones this module uses."""
    if aiortc.__version__ != PINNED_AIORTC:
        raise HookError(
            f"aiortc {aiortc.__version__} is installed but the room relay was written "
            f"against {PINNED_AIORTC}: re-check streams/forwarding.py before upgrading"
        )
    probe = RTCRtpReceiver.__init__.__code__.co_names
    for name in (_QUEUE, _STARTED, _ACTIVE_SSRC, _RTX_SSRC):
        if name not in probe:
            raise HookError(f"RTCRtpReceiver has no {name} any more")
    for attr in ("_handle_rtp_packet", "_send_rtcp_pli"):
        if not hasattr(RTCRtpReceiver, attr):
            raise HookError(f"RTCRtpReceiver has no {attr} any more")
    if not hasattr(RTCRtpSender, "_send_keyframe"):
        raise HookError("RTCRtpSender has no _send_keyframe any more")
    if _RX_PACKETS not in RTCDtlsTransport.__init__.__code__.co_names:
        raise HookError(f"RTCDtlsTransport has no {_RX_PACKETS} any more")


class _EncodedTap:
    """Stands in for the receiver's decoder queue (``put`` on the loop, ``get`` in the
    decoder thread)."""

    def __init__(self, sink: FrameSink) -> None:
        self._sink = sink
        self._end: queue.SimpleQueue[None] = queue.SimpleQueue()
        self.frames = 0

    def put(self, task: Any) -> None:
        if task is None:  # the receiver stops: let the idle decoder thread end the track
            self._end.put(None)
            return
        codec, frame = task
        self.frames += 1
        self._sink(codec.mimeType, frame.data, frame.timestamp)

    def get(self) -> None:
        return self._end.get()


def tap_receiver(receiver: RTCRtpReceiver, sink: FrameSink) -> None:
    """Send ``receiver``'s complete encoded frames to ``sink`` instead of its decoder.

    Call it after ``setRemoteDescription`` and before the connection starts receiving.
    """
    if getattr(receiver, _STARTED):
        raise HookError("the receiver already started: tap it before it connects")
    setattr(receiver, _QUEUE, _EncodedTap(sink))


def watch_audio_level(receiver: RTCRtpReceiver, sink: LevelSink) -> None:
    """Report the ssrc-audio-level header extension of every RTP packet ``receiver`` gets."""
    original = receiver._handle_rtp_packet

    async def handle(packet: Any, arrival_time_ms: int) -> None:
        level = packet.extensions.audio_level
        if level is not None:
            sink(int(level[1]))
        await original(packet, arrival_time_ms)

    receiver._handle_rtp_packet = handle  # type: ignore[method-assign]


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call ``callback`` when the far end asks ``sender`` for a keyframe (PLI or FIR)."""
    sender._send_keyframe = callback  # type: ignore[method-assign]


def send_pli(receiver: RTCRtpReceiver) -> Awaitable[None] | None:
    """Ask the far end of ``receiver`` for a keyframe; None when nothing was received yet."""
    rtx: dict[int, int] = getattr(receiver, _RTX_SSRC)
    media = [ssrc for ssrc in getattr(receiver, _ACTIVE_SSRC) if ssrc not in rtx]
    if not media:
        return None
    return asyncio.ensure_future(receiver._send_rtcp_pli(media[-1]))


def packets_received(pc: RTCPeerConnection) -> int:
    """Datagrams the connection's DTLS transports received (RTP, RTCP, DTLS)."""
    transports = {id(t.receiver.transport): t.receiver.transport for t in pc.getTransceivers()}
    return sum(int(getattr(t, _RX_PACKETS)) for t in transports.values())


check()
