"""RTP payload codecs for SIP calls, pure and I/O-free: RFC 6184 H.264 and G.711."""

from protocols.rtp.g711 import (
    G711_PAYLOAD_TYPES,
    alaw_decode,
    alaw_encode,
    ulaw_decode,
    ulaw_encode,
)
from protocols.rtp.h264 import (
    H264Choice,
    H264Depacketizer,
    H264Packetizer,
    H264RtpError,
    choose_h264,
    fmtp_params,
    negotiate_h264,
)

__all__ = [
    "G711_PAYLOAD_TYPES",
    "H264Choice",
    "H264Depacketizer",
    "H264Packetizer",
    "H264RtpError",
    "alaw_decode",
    "alaw_encode",
    "choose_h264",
    "fmtp_params",
    "negotiate_h264",
    "ulaw_decode",
    "ulaw_encode",
]
