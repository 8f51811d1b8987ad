"""GB28181 media: SSRC allocation, RTP, RFC 4571 framing, reordering and PS demuxing."""

import io
import random

import av
import numpy as np
import pytest

from protocols.gb28181.ps import PsDemuxer, nal_types_h264
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

SPS = b"\x00\x00\x00\x01\x67\x64\x00\x1f"
PPS = b"\x00\x00\x00\x01\x68\xee\x3c\x80"
IDR = b"\x00\x00\x00\x01\x65\x88" + bytes(range(1, 200))
P_SLICE = b"\x00\x00\x00\x01\x41\x9a" + bytes(range(2, 120))


def test_ssrc_layout_and_reuse() -> None:
    alloc = SsrcAllocator("3402000000")
    live = alloc.allocate()
    playback = alloc.allocate(playback=True)
    # digits 2-6 are characters 4-8 of the domain id: "3402000000" -> "20000"
    assert live == "0200000000" and playback == "1200000000"
    assert alloc.in_use(live) and len(alloc) == 2
    alloc.release(live)
    assert not alloc.in_use(live)
    assert ssrc_value(playback) == 1200000000 and ssrc_text(1200000000) == playback
    assert ssrc_text(7) == "0000000007"
    with pytest.raises(ValueError):
        SsrcAllocator("34020")


def test_ssrc_allocation_wraps_skips_used_and_exhausts() -> None:
    alloc = SsrcAllocator("3402000000")
    taken = {alloc.allocate() for _ in range(10_000)}
    assert len(taken) == 10_000
    with pytest.raises(SsrcExhausted):
        alloc.allocate()
    alloc.release("0200005000")
    assert alloc.allocate() == "0200005000"


def test_rtp_round_trip_and_header_features() -> None:
    packet = RtpPacket(True, 96, 65535, 3_600_000, 20000001, b"\x00\x00\x01\xba payload")
    assert parse_rtp(encode_rtp(packet)) == packet
    raw = bytearray(encode_rtp(packet))
    # add 2 CSRCs, a one-word extension and 3 bytes of padding
    raw[0] |= 0x30 | 2
    extended = bytes(raw[:12]) + b"\x00" * 8 + b"\xbe\xde\x00\x01" + b"\x01\x02\x03\x04"
    extended += packet.payload + b"\x00\x00\x03"
    assert parse_rtp(extended).payload == packet.payload
    with pytest.raises(RtpError):
        parse_rtp(b"\x80\x60\x00")
    with pytest.raises(RtpError):
        parse_rtp(b"\x40" + bytes(11))
    with pytest.raises(RtpError):
        parse_rtp(bytes(raw[:12]) + b"\xff")


def test_rfc4571_framing_survives_any_chunking() -> None:
    packets = [bytes([i]) * (i * 37 % 1500 + 1) for i in range(60)]
    stream = b"".join(frame_rfc4571(p) for p in packets) + b"\x00\x00"
    rng = random.Random(7)
    for _ in range(20):
        framer = Rfc4571Framer()
        got: list[bytes] = []
        pos = 0
        while pos < len(stream):
            size = rng.randint(1, 400)
            got += framer.feed(stream[pos : pos + size])
            pos += size
        assert got == packets and framer.buffered == 0
    with pytest.raises(RtpError):
        Rfc4571Framer(max_frame=100).feed(b"\x01\x00")


def _packet(seq: int) -> RtpPacket:
    return RtpPacket(False, 96, seq % 65536, seq * 3600, 1, seq.to_bytes(4, "big"))


def test_reorderer_handles_wrap_reordering_and_duplicates() -> None:
    reorderer = RtpReorderer(window=16)
    order = [65530, 65532, 65531, 65533, 65533, 65535, 65534, 0, 2, 1, 3]
    out = [p.sequence for seq in order for p in reorderer.push(_packet(seq))]
    assert out == [65530, 65531, 65532, 65533, 65534, 65535, 0, 1, 2, 3]
    assert reorderer.duplicates == 1 and reorderer.reordered == 3 and reorderer.lost == 0
    assert reorderer.push(_packet(65531)) == [] and reorderer.duplicates == 2


def test_reorderer_gives_up_on_a_gap_when_the_window_overflows() -> None:
    reorderer = RtpReorderer(window=8)
    delivered = [p.sequence for p in reorderer.push(_packet(100))]
    for seq in range(103, 120):
        delivered += [p.sequence for p in reorderer.push(_packet(seq))]
    assert reorderer.lost == 2
    assert delivered[:2] == [100, 103] and delivered == sorted(delivered)
    assert reorderer.push(_packet(101)) == [] and reorderer.late == 1
    delivered += [p.sequence for p in reorderer.flush()]
    assert delivered == [100, *range(103, 120)]


def _pes(stream_id: int, payload: bytes, pts: int | None) -> bytes:
    header = b""
    flags = 0
    if pts is not None:
        flags = 0x80
        header = bytes(
            (
                0x21 | ((pts >> 29) & 0x0E),
                (pts >> 22) & 0xFF,
                ((pts >> 14) & 0xFE) | 1,
                (pts >> 7) & 0xFF,
                ((pts << 1) & 0xFE) | 1,
            )
        )
    body = bytes((0x80, flags, len(header))) + header + payload
    return b"\x00\x00\x01" + bytes((stream_id,)) + len(body).to_bytes(2, "big") + body


PACK = bytes.fromhex("000001ba4400040004018666cffa") + b"\xff\xff"  # 2 stuffing bytes


def _psm(entries: list[tuple[int, int]]) -> bytes:
    es_map = b"".join(bytes((st, sid, 0, 0)) for st, sid in entries)
    body = b"\xe0\xff\x00\x00" + len(es_map).to_bytes(2, "big") + es_map + b"\x00" * 4
    return b"\x00\x00\x01\xbc" + len(body).to_bytes(2, "big") + body


def test_hand_built_ps_with_psm_pes_and_audio() -> None:
    frame1 = SPS + PPS + IDR
    stream = (
        PACK
        + _psm([(0x1B, 0xE0), (0x90, 0xC0)])
        + _pes(0xE0, frame1[:100], 3600)
        + _pes(0xE0, frame1[100:], None)
        + _pes(0xC0, b"\xd5" * 160, 3600)
        + b"garbage!"
        + PACK
        + _pes(0xE0, P_SLICE, 7200)
        + b"\x00\x00\x01\xb9"
    )
    demuxer = PsDemuxer()
    units = demuxer.feed(stream) + demuxer.flush()
    video = [u for u in units if u.kind == "video"]
    audio = [u for u in units if u.kind == "audio"]
    assert [u.data for u in video] == [frame1, P_SLICE]
    assert [u.pts for u in video] == [3600, 7200] and video[0].dts == 3600
    assert [u.keyframe for u in video] == [True, False]
    assert video[0].codec == "h264"
    assert audio[0].codec == "g711a" and audio[0].data == b"\xd5" * 160
    assert demuxer.resyncs == 1 and demuxer.counters["psm"] == 1
    assert nal_types_h264(frame1) == [7, 8, 5]


def test_h265_is_guessed_without_psm_and_oversize_units_are_dropped() -> None:
    vps = b"\x00\x00\x00\x01\x40\x01\x0c\x01"
    idr = b"\x00\x00\x00\x01\x26\x01\xaf" + b"\x11" * 50
    trail = b"\x00\x00\x00\x01\x02\x01\xd0" + b"\x22" * 50
    demuxer = PsDemuxer()
    units = demuxer.feed(PACK + _pes(0xE0, vps + idr, 0) + _pes(0xE0, trail, 3600))
    units += demuxer.flush()
    assert [(u.codec, u.keyframe) for u in units] == [("h265", True), ("h265", False)]
    small = PsDemuxer(max_access_unit=300)
    big = SPS + PPS + IDR + b"\x55" * 400
    out = small.feed(PACK + _pes(0xE0, big, 0) + _pes(0xE0, P_SLICE, 3600)) + small.flush()
    assert [u.data for u in out] == [P_SLICE] and small.oversize_dropped == 1


def _h264_ps_clip(frames: int) -> tuple[bytes, list[float]]:
    """Encode frames with libx264 and mux them into MPEG-2 PS with PyAV's "vob" muxer."""
    buf = io.BytesIO()
    # "mpeg" writes MPEG-1 system packs; "vob" writes MPEG-2 packs and PES headers (no PSM)
    container = av.open(buf, "w", format="vob")
    stream = container.add_stream("libx264", rate=25)
    stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
    stream.codec_context.max_b_frames = 0
    stream.codec_context.gop_size = 25
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:240, 0:320]
    means: list[float] = []
    for i in range(frames):
        base = np.stack([(xx + i * 4) % 256, (yy * 2 + i * 3) % 256, (xx + yy + i * 7) % 256], -1)
        noise = rng.integers(0, 24, size=base.shape)
        frame = av.VideoFrame.from_ndarray((base + noise).clip(0, 255).astype(np.uint8), "rgb24")
        means.append(float(frame.reformat(format="gray").to_ndarray().mean()))
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return buf.getvalue(), means


def test_pyav_h264_program_stream_demuxes_to_decodable_access_units() -> None:
    data, means = _h264_ps_clip(50)
    rng = random.Random(11)
    demuxer = PsDemuxer()
    units = []
    pos = 0
    while pos < len(data):
        size = rng.randint(1, 4000)
        units += demuxer.feed(data[pos : pos + size])
        pos += size
    units += demuxer.flush()
    assert len(units) == 50
    assert units[0].keyframe and units[0].codec == "h264"
    stamps = [u.pts for u in units if u.pts is not None]
    assert len(stamps) > 25 and stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    decoder = av.CodecContext.create("h264", "r")
    decoded = []
    for unit in units:
        decoded += decoder.decode(av.Packet(unit.data))
    decoded += decoder.decode(None)
    assert len(decoded) == 50
    for frame, mean in zip(decoded, means, strict=True):
        assert abs(float(frame.to_ndarray(format="gray").mean()) - mean) < 3.0
