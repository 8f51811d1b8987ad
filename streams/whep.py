"""WHEP viewers: one aiortc RTCPeerConnection per viewer, fed encoded H.264 packets that
aiortc packetises without decoding or re-encoding.

aiortc only knows constrained-baseline H.264, and it checks profiles when it reads an offer.
Cameras send Main/High, so the camera's real profile is negotiated per connection: the
offer's H.264 payload type that can carry the camera's profile is chosen, aiortc is shown
that one entry as baseline (so its global codec table is never patched), and the
transceiver's negotiated codec is then set back to the offer's real parameters, which is
what the answer carries.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

import av
from aiortc import (
    MediaStreamTrack,
    RTCPeerConnection,
    RTCRtpCodecParameters,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import RTCRtcpFeedback
from aiortc.sdp import H264Profile, SessionDescription, parse_h264_profile_level_id

from streams.relay import RelayCounters, Viewer

BASELINE_PLID = "42e01f"
SUPPORTED_FEEDBACK = {("nack", None), ("nack", "pli"), ("goog-remb", None)}
_P = H264Profile
# Which offered decoder profiles can play a stream of a given profile (H.264 Annex A: a
# High 4:4:4 Predictive decoder also decodes High, Main and constrained baseline streams;
# Chromium offers f4001f rather than 64001f for High).
_HI444 = _P.PROFILE_PREDICTIVE_HIGH_444
PLAYABLE_BY: dict[H264Profile, tuple[H264Profile, ...]] = {
    _P.PROFILE_CONSTRAINED_BASELINE: (
        _P.PROFILE_CONSTRAINED_BASELINE, _P.PROFILE_BASELINE, _P.PROFILE_MAIN,
        _P.PROFILE_CONSTRAINED_HIGH, _P.PROFILE_HIGH, _HI444,
    ),
    _P.PROFILE_BASELINE: (_P.PROFILE_BASELINE,),
    _P.PROFILE_MAIN: (_P.PROFILE_MAIN, _P.PROFILE_HIGH, _HI444),
    _P.PROFILE_CONSTRAINED_HIGH: (_P.PROFILE_CONSTRAINED_HIGH, _P.PROFILE_HIGH, _HI444),
    _P.PROFILE_HIGH: (_P.PROFILE_HIGH, _HI444),
    _HI444: (_HI444,),
}  # fmt: skip
_BY_IDC = {0x42: _P.PROFILE_BASELINE, 0x4D: _P.PROFILE_MAIN, 0x64: _P.PROFILE_HIGH}


class OfferError(ValueError):
    """The offer cannot be answered; ``code`` says why (``camera.bad_sdp`` …)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def h264_profile(plid: str) -> H264Profile | None:
    """The profile of a ``profile-level-id``; unknown constraint bits fall back to the idc."""
    try:
        return parse_h264_profile_level_id(plid)[0]
    except ValueError:
        try:
            return _BY_IDC.get(int(plid[:2], 16))
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class ChosenCodec:
    """The offer's H.264 entry (and its RTX) that will carry the camera's stream."""

    codec: RTCRtpCodecParameters
    rtx: RTCRtpCodecParameters | None


def choose_codec(offer: str, camera_plid: str | None) -> ChosenCodec:
    """The offered H.264 payload type (packetization-mode 1) able to play the camera."""
    try:
        description = SessionDescription.parse(offer)
    except (ValueError, IndexError, KeyError, TypeError) as err:
        raise OfferError("camera.bad_sdp", f"unparseable SDP offer: {err}") from err
    video = [m for m in description.media if m.kind == "video"]
    if not video:
        raise OfferError("camera.bad_sdp", "the offer has no video media section")
    if video[0].direction not in (None, "recvonly", "sendrecv"):
        raise OfferError("camera.bad_sdp", "the offer's video section does not receive")
    wanted = h264_profile(camera_plid or BASELINE_PLID) or _P.PROFILE_HIGH
    playable = PLAYABLE_BY[wanted]
    candidates: list[tuple[int, RTCRtpCodecParameters]] = []
    for codec in video[0].rtp.codecs:
        if codec.mimeType.lower() != "video/h264":
            continue
        if str(codec.parameters.get("packetization-mode", "0")) != "1":
            continue
        offered = h264_profile(str(codec.parameters.get("profile-level-id", BASELINE_PLID)))
        if offered in playable:
            candidates.append((playable.index(offered), codec))
    if not candidates:
        raise OfferError(
            "camera.codec_unsupported",
            f"the viewer offers no H.264 profile that plays this camera "
            f"(profile-level-id {camera_plid}); ask for ?transcode=1 to get a transcoded "
            f"stream",
        )
    codec = copy.deepcopy(min(candidates, key=lambda c: c[0])[1])
    codec.rtcpFeedback = [
        RTCRtcpFeedback(type=f.type, parameter=f.parameter)
        for f in codec.rtcpFeedback
        if (f.type, f.parameter) in SUPPORTED_FEEDBACK
    ]
    rtx = next(
        (
            copy.deepcopy(c)
            for c in video[0].rtp.codecs
            if c.mimeType.lower() == "video/rtx" and c.parameters.get("apt") == codec.payloadType
        ),
        None,
    )
    return ChosenCodec(codec, rtx)


def baseline_view(offer: str, payload_type: int) -> str:
    """The offer with one payload type's profile shown as constrained baseline, so that
    aiortc's own profile check accepts it (the real profile is restored afterwards)."""
    pattern = re.compile(
        rf"^(a=fmtp:{payload_type} .*?profile-level-id=)([0-9a-fA-F]{{6}})", re.MULTILINE
    )
    return pattern.sub(lambda m: m.group(1) + BASELINE_PLID, offer)


class PassthroughTrack(MediaStreamTrack):
    """A video track whose ``recv()`` returns encoded ``av.Packet``s from a relay viewer."""

    kind = "video"

    def __init__(self, viewer: Viewer, counters: RelayCounters) -> None:
        super().__init__()
        self._viewer = viewer
        self._counters = counters
        self.first_packet_sent = False

    async def recv(self) -> av.Packet:  # type: ignore[type-arg]
        """The next access unit; ends the track when the relay ends this viewer."""
        item = await self._viewer.get()
        if item is None:
            self.stop()
            raise MediaStreamError
        packet = av.Packet(item.data)
        packet.pts = item.pts
        packet.dts = item.dts
        packet.time_base = item.time_base
        self.first_packet_sent = True
        return packet


async def answer_offer(
    pc: RTCPeerConnection, offer: str, chosen: ChosenCodec, track: PassthroughTrack
) -> str:
    """Apply ``offer`` with ``chosen`` as the only video codec, gather ICE, return the answer."""
    try:
        await pc.setRemoteDescription(
            RTCSessionDescription(baseline_view(offer, chosen.codec.payloadType or 0), "offer")
        )
    except (ValueError, TypeError, KeyError, IndexError) as err:
        raise OfferError("camera.bad_sdp", f"the offer was refused: {err}") from err
    except Exception as err:  # aiortc raises its own OperationError/InvalidStateError
        raise OfferError("camera.bad_sdp", f"the offer was refused: {err}") from err
    transceiver = next(
        (t for t in pc.getTransceivers() if t.kind == "video"),
        None,
    )
    if transceiver is None:
        raise OfferError("camera.bad_sdp", "the offer has no video media section")
    pc.addTrack(track)
    codecs = [chosen.codec]
    if chosen.rtx is not None:
        codecs.append(chosen.rtx)
    transceiver._codecs = codecs  # the real profile, for this connection only
    answer = await pc.createAnswer()
    await pc.setLocalDescription(answer)  # returns once ICE gathering is complete
    local = pc.localDescription
    assert local is not None
    return str(local.sdp)
