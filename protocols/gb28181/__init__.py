"""GB/T 28181 wire formats, pure and I/O-free: MANSCDP XML, PTZ commands, SSRCs, RTP and PS.

Modules: :mod:`~protocols.gb28181.manscdp` (parse, catalog items, assembly; builders in
``manscdp_build``), :mod:`~protocols.gb28181.ptz`, :mod:`~protocols.gb28181.ssrc`,
:mod:`~protocols.gb28181.rtp`, :mod:`~protocols.gb28181.ps` (NAL helpers in ``nal``) and
:mod:`~protocols.gb28181.ps_mux` (PS muxer and RTP packetizer).
"""

from protocols.gb28181.manscdp import (
    CatalogAssembler,
    CatalogItem,
    ManscdpError,
    ManscdpMessage,
    build_alarm_notify,
    build_catalog_response,
    build_device_info_response,
    build_keepalive,
    build_ptz_control,
    build_query,
    build_response,
    catalog_items,
    parse_manscdp,
    split_catalog,
)
from protocols.gb28181.nal import nal_types_h264, nal_types_h265
from protocols.gb28181.ps import AccessUnit, PsDemuxer, PsError
from protocols.gb28181.ps_mux import STREAM_TYPE, PsMuxer, PsRtpPacketizer, ps_rtp_payloads
from protocols.gb28181.ptz import (
    PTZ_STOP,
    PtzCommand,
    encode_ptz,
    parse_ptz,
    preset_hex,
    ptz_from_velocity,
    ptz_hex,
)
from protocols.gb28181.rtp import (
    Rfc4571Framer,
    RtpError,
    RtpPacket,
    RtpReorderer,
    encode_rtp,
    frame_rfc4571,
    parse_rtp,
)
from protocols.gb28181.ssrc import SsrcAllocator, SsrcExhausted, ssrc_text, ssrc_value

__all__ = [
    "PTZ_STOP",
    "STREAM_TYPE",
    "AccessUnit",
    "CatalogAssembler",
    "CatalogItem",
    "ManscdpError",
    "ManscdpMessage",
    "PsDemuxer",
    "PsError",
    "PsMuxer",
    "PsRtpPacketizer",
    "PtzCommand",
    "Rfc4571Framer",
    "RtpError",
    "RtpPacket",
    "RtpReorderer",
    "SsrcAllocator",
    "SsrcExhausted",
    "build_alarm_notify",
    "build_catalog_response",
    "build_device_info_response",
    "build_keepalive",
    "build_ptz_control",
    "build_query",
    "build_response",
    "catalog_items",
    "encode_ptz",
    "encode_rtp",
    "frame_rfc4571",
    "nal_types_h264",
    "nal_types_h265",
    "parse_manscdp",
    "parse_ptz",
    "parse_rtp",
    "preset_hex",
    "ps_rtp_payloads",
    "ptz_from_velocity",
    "ptz_hex",
    "split_catalog",
    "ssrc_text",
    "ssrc_value",
]
