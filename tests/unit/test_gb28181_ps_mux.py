from __future__ import annotations

import io
import itertools
from fractions import Fraction

import av
import numpy as np
import pytest

from protocols.gb28181.ps import PsDemuxer
from protocols.gb28181.ps_mux import STREAM_TYPE, PsMuxer, PsRtpPacketizer, ps_rtp_payloads
from protocols.gb28181.rtp import parse_rtp

WIDTH, HEIGHT, FRAMES = 320, 240, 25
TICKS_PER_FRAME = 3600  # 90 kHz / 25 fps
SPS = b"\x00\x00\x00\x01\x67\x42\xc0\x1e\xda\x02\x80\xbf\xe5\x84"
PPS = b"\x00\x00\x00\x01\x68\xce\x3c\x80"
P_SLICE = b"\x00\x00\x00\x01\x41\x9a\x02\x03" + b"\x24" * 40


def _crc32_mpeg2(data: bytes) -> int:
    """Bitwise CRC-32/MPEG-2, written independently of the muxer's table version."""
    crc = 0xFFFFFFFF
    for byte in data:
        for bit in range(7, -1, -1):
            top = ((crc >> 31) & 1) ^ ((byte >> bit) & 1)
            crc = (crc << 1) & 0xFFFFFFFF
            if top:
                crc ^= 0x04C11DB7
    return crc


def _timestamp(data: bytes) -> int:
    return (
        ((data[0] >> 1) & 0x07) << 30
        | data[1] << 22
        | (data[2] >> 1) << 15
        | data[3] << 7
        | data[4] >> 1
    )


def _scr(pack: bytes) -> int:
    bits = int.from_bytes(pack[4:10], "big")
    assert bits >> 46 == 0b01
    assert bits & (1 << 42) and bits & (1 << 26) and bits & (1 << 10) and bits & 1
    return ((bits >> 43) & 0x7) << 30 | ((bits >> 27) & 0x7FFF) << 15 | (bits >> 11) & 0x7FFF


def _packets(pack: bytes) -> list[tuple[int, bytes]]:
    """Walk one pack: check the pack header, return (stream id, packet bytes) in order."""
    assert pack[:4] == b"\x00\x00\x01\xba" and pack[4] & 0xC0 == 0x40
    pos = 14 + (pack[13] & 0x07)
    out: list[tuple[int, bytes]] = []
    while pos < len(pack):
        assert pack[pos : pos + 3] == b"\x00\x00\x01"
        length = int.from_bytes(pack[pos + 4 : pos + 6], "big")
        end = pos + 6 + length
        assert end <= len(pack)
        out.append((pack[pos + 3], pack[pos:end]))
        pos = end
    assert pos == len(pack)
    return out


def _encode_clip(codec: str = "libx264") -> list[tuple[bytes, int, bool]]:
    """(Annex-B access unit, pts in 90 kHz, keyframe) for a 25-frame moving pattern."""
    ctx = av.CodecContext.create(codec, "w")
    assert isinstance(ctx, av.VideoCodecContext)
    ctx.width, ctx.height, ctx.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    ctx.time_base = Fraction(1, 25)
    ctx.framerate = Fraction(25, 1)
    ctx.max_b_frames = 0
    ctx.gop_size = 10
    if codec == "libx265":
        ctx.options = {"x265-params": "log-level=error:bframes=0:keyint=10"}
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    packets = []
    for i in range(FRAMES):
        rgb = np.stack([(xx + i * 4) % 256, (yy * 2 + i * 3) % 256, (xx + yy + i * 7) % 256], -1)
        frame = av.VideoFrame.from_ndarray(rgb.astype(np.uint8), "rgb24").reformat(format="yuv420p")
        frame.pts = i
        packets += ctx.encode(frame)
    packets += ctx.encode(None)
    assert all(p.pts is not None for p in packets)
    units = [(bytes(p), (p.pts or 0) * TICKS_PER_FRAME, bool(p.is_keyframe)) for p in packets]
    assert len(units) == FRAMES
    return units


@pytest.fixture(scope="module")
def h264_clip() -> list[tuple[bytes, int, bool]]:
    return _encode_clip()


def _demux(data: bytes) -> list[tuple[bytes, int | None, bool, str]]:
    demuxer = PsDemuxer()
    units = demuxer.feed(data) + demuxer.flush()
    return [(u.data, u.pts, u.keyframe, u.codec) for u in units]


def test_clip_round_trips_through_our_demuxer(h264_clip: list[tuple[bytes, int, bool]]) -> None:
    muxer = PsMuxer("h264")
    base = 90_000
    stream = b"".join(muxer.mux(au, base + pts, key) for au, pts, key in h264_clip)
    got = _demux(stream)
    assert [(d, p, k) for d, p, k, _ in got] == [(au, base + p, k) for au, p, k in h264_clip]
    assert {codec for *_, codec in got} == {"h264"}
    assert sum(key for _, _, key in h264_clip) >= 3  # gop_size 10: frames 0, 10, 20


def test_pyav_decodes_every_frame_of_the_muxed_clip(
    h264_clip: list[tuple[bytes, int, bool]],
) -> None:
    muxer = PsMuxer()
    stream = b"".join(muxer.mux(au, pts, key) for au, pts, key in h264_clip)
    with av.open(io.BytesIO(stream), "r", format="mpeg") as container:
        video = container.streams.video[0]
        assert video.codec_context.name == "h264"
        stamps = []
        frames = []
        for packet in container.demux(video):
            if packet.pts is not None and packet.size:
                stamps.append(packet.pts)
            frames += packet.decode()
    assert len(frames) == FRAMES
    assert {(f.width, f.height) for f in frames} == {(WIDTH, HEIGHT)}
    assert stamps == [pts for _, pts, _ in h264_clip]


def test_system_header_and_psm_only_on_keyframes(
    h264_clip: list[tuple[bytes, int, bool]],
) -> None:
    muxer = PsMuxer()
    for au, pts, key in h264_clip:
        pack = muxer.mux(au, pts, key)
        ids = [sid for sid, _ in _packets(pack)]
        assert _scr(pack) == pts
        if key:
            assert ids[:2] == [0xBB, 0xBC] and set(ids[2:]) == {0xE0}
        else:
            assert set(ids) == {0xE0}
        assert (b"\x00\x00\x01\xbb" in pack) is key and (b"\x00\x00\x01\xbc" in pack) is key


def test_psm_crc_stream_type_and_system_header() -> None:
    for codec, stream_type in (("h264", 0x1B), ("h265", 0x24)):
        pack = PsMuxer(codec).mux(SPS + PPS + P_SLICE, 1234, keyframe=True)
        packets = dict(_packets(pack))
        psm = packets[0xBC]
        assert _crc32_mpeg2(psm[:-4]) == int.from_bytes(psm[-4:], "big")
        assert _crc32_mpeg2(psm) == 0  # a correct CRC leaves a zero remainder
        info_length = int.from_bytes(psm[8:10], "big")
        es_map = psm[12 + info_length : -4]
        assert int.from_bytes(psm[10 + info_length : 12 + info_length], "big") == len(es_map)
        assert es_map == bytes((stream_type, 0xE0, 0, 0)) == bytes((STREAM_TYPE[codec], 0xE0, 0, 0))
        system = packets[0xBB]
        assert int.from_bytes(system[6:9], "big") >> 1 & 0x3FFFFF == 50_000  # rate_bound
        assert system[12:13] == b"\xe0"  # the one announced stream is video 0xE0
    assert _crc32_mpeg2(b"123456789") == 0x0376E6E7  # the catalogue check value


def test_h265_pack_is_demuxed_as_h265() -> None:
    vps = b"\x00\x00\x00\x01\x40\x01\x0c\x01\xff\xff"
    idr = b"\x00\x00\x00\x01\x26\x01\xaf" + b"\x11" * 50
    trail = b"\x00\x00\x00\x01\x02\x01\xd0" + b"\x22" * 50
    muxer = PsMuxer("h265")
    got = _demux(muxer.mux(vps + idr, 0, True) + muxer.mux(trail, 3600, False))
    assert got == [(vps + idr, 0, True, "h265"), (trail, 3600, False, "h265")]


def test_h265_clip_decodes_with_pyav() -> None:
    try:
        clip = _encode_clip("libx265")
    except (av.error.FFmpegError, ValueError):  # pragma: no cover - encoder not built in
        pytest.skip("libx265 is not available")
    muxer = PsMuxer("h265")
    stream = b"".join(muxer.mux(au, pts, key) for au, pts, key in clip)
    assert [(d, p) for d, p, *_ in _demux(stream)] == [(au, pts) for au, pts, _ in clip]
    with av.open(io.BytesIO(stream), "r", format="mpeg") as container:
        video = container.streams.video[0]
        assert video.codec_context.name == "hevc"
        frames = [f for packet in container.demux(video) for f in packet.decode()]
    assert len(frames) == FRAMES and frames[0].width == WIDTH


def test_unknown_codec_and_bad_arguments_raise() -> None:
    with pytest.raises(ValueError):
        PsMuxer("mpeg4")
    with pytest.raises(ValueError):
        PsMuxer("H264")
    with pytest.raises(ValueError):
        PsMuxer().mux(P_SLICE, -1, False)
    with pytest.raises(ValueError):
        ps_rtp_payloads(b"abc", 0)


def test_large_access_unit_is_split_into_several_pes() -> None:
    rng = np.random.default_rng(5)
    body = rng.integers(1, 256, size=200_000, dtype=np.uint8).tobytes()  # no zero bytes
    idr = b"\x00\x00\x00\x01\x65\x88" + body
    big = SPS + PPS + idr
    muxer = PsMuxer()
    pack = muxer.mux(big, 7200, True)
    pes = [packet for sid, packet in _packets(pack) if sid == 0xE0]
    assert len(pes) == 4  # 200 kB in PES packets of at most 64 kB
    lengths = [int.from_bytes(p[4:6], "big") for p in pes]
    assert max(lengths) <= 65535 and lengths[0] == 65535
    assert [p[7] & 0xC0 for p in pes] == [0xC0, 0, 0, 0]  # PTS and DTS only on the first
    assert _timestamp(pes[0][9:14]) == _timestamp(pes[0][14:19]) == 7200
    assert b"".join(p[9 + p[8] :] for p in pes) == big
    got = _demux(pack + muxer.mux(P_SLICE, 10800, False))
    assert got == [(big, 7200, True, "h264"), (P_SLICE, 10800, False, "h264")]


def test_pts_wraps_at_33_bits() -> None:
    muxer = PsMuxer()
    top = (1 << 33) - 1
    first = muxer.mux(SPS + PPS + P_SLICE, top, True)
    second = muxer.mux(P_SLICE, (1 << 33) + 3600 - 1, False)
    third = muxer.mux(P_SLICE, 5 * (1 << 33) + 42, False)
    assert [_scr(p) for p in (first, second, third)] == [top, 3599, 42]
    got = _demux(first + second + third)
    assert [pts for _, pts, _, _ in got] == [top, 3599, 42]


def test_rtp_payloads_split_and_keep_every_byte() -> None:
    data = bytes(range(256)) * 20
    parts = ps_rtp_payloads(data, 1400)
    assert [len(p) for p in parts] == [1400, 1400, 1400, 920]
    assert b"".join(parts) == data
    assert ps_rtp_payloads(data[:1400], 1400) == [data[:1400]]
    assert ps_rtp_payloads(b"", 1400) == []


def test_rtp_packetizer_sequence_marker_and_round_trip(
    h264_clip: list[tuple[bytes, int, bool]],
) -> None:
    muxer = PsMuxer()
    packetizer = PsRtpPacketizer(ssrc=0x0BADCAFE, max_payload=500, first_sequence=65530)
    sequences: list[int] = []
    demuxer = PsDemuxer()
    got = []
    base = (1 << 32) - 2 * TICKS_PER_FRAME  # RTP timestamps wrap at 32 bits
    for au, pts, key in h264_clip:
        pack = muxer.mux(au, base + pts, key)
        packets = [parse_rtp(p) for p in packetizer.packets(pack, base + pts)]
        assert len(packets) == -(-len(pack) // 500)
        assert all(len(p.payload) <= 500 for p in packets)
        assert [p.marker for p in packets] == [False] * (len(packets) - 1) + [True]
        assert {(p.ssrc, p.payload_type, p.timestamp) for p in packets} == {
            (0x0BADCAFE, 96, (base + pts) % (1 << 32))
        }
        assert b"".join(p.payload for p in packets) == pack
        sequences += [p.sequence for p in packets]
        for packet in packets:
            got += demuxer.feed(packet.payload)
    got += demuxer.flush()
    assert sequences[0] == 65530 and 0 in sequences
    assert all((b - a) % 65536 == 1 for a, b in itertools.pairwise(sequences))
    assert packetizer.sequence == (sequences[-1] + 1) % 65536
    assert [(u.data, u.pts) for u in got] == [(au, base + pts) for au, pts, _ in h264_clip]


def test_rtp_packetizer_payload_type_and_small_pack() -> None:
    packetizer = PsRtpPacketizer(ssrc=1, payload_type=98, first_sequence=7)
    pack = PsMuxer().mux(P_SLICE, 0, False)
    (only,) = [parse_rtp(p) for p in packetizer.packets(pack, 0)]
    assert (only.marker, only.payload_type, only.sequence, only.payload) == (True, 98, 7, pack)
    assert packetizer.packets(pack, 3600)[0][2:4] == (8).to_bytes(2, "big")
