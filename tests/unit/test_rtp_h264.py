"""RFC 6184 H.264 RTP packetiser/depacketiser and SDP fmtp negotiation."""

from __future__ import annotations

import itertools
from fractions import Fraction

import av
import numpy as np
import pytest

from protocols.gb28181.rtp import RtpPacket, parse_rtp
from protocols.rtp import (
    H264Choice,
    H264Depacketizer,
    H264Packetizer,
    H264RtpError,
    choose_h264,
    fmtp_params,
    negotiate_h264,
)
from streams.h264 import START_CODE, nal_type, split_annexb

WIDTH, HEIGHT, FRAMES, GOP = 320, 240, 25, 10
TICKS_PER_FRAME = 3600  # 90 kHz at 25 fps
MAX_PAYLOAD = 1200
SSRC, PT = 0x11223344, 97
SPS = bytes.fromhex("6742e01f8c8d40a02d08")
PPS = bytes.fromhex("68ce3c80")


def _encoder_name() -> str:
    if "libx264" in av.codecs_available:
        return "libx264"
    for name in ("h264_v4l2m2m", "h264_nvenc", "h264_qsv", "h264"):
        if name in av.codecs_available:
            try:
                av.CodecContext.create(name, "w")
            except Exception:  # probing which encoder works
                continue
            return name
    pytest.skip("no H.264 encoder available")


@pytest.fixture(scope="module")
def clip() -> list[bytes]:
    """Annex-B access units of a 320x240 baseline clip with an IDR every GOP frames."""
    ctx = av.CodecContext.create(_encoder_name(), "w")
    assert isinstance(ctx, av.VideoCodecContext)
    ctx.width, ctx.height, ctx.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    ctx.time_base = Fraction(1, 25)
    ctx.framerate = Fraction(25, 1)
    ctx.options = {
        "profile": "baseline",
        "tune": "zerolatency",
        "x264-params": f"keyint={GOP}:min-keyint={GOP}:scenecut=0",
    }
    rng = np.random.default_rng(7)
    units: list[bytes] = []
    for i in range(FRAMES):
        image = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        image[:, : (i * 8) % WIDTH] //= 2
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        units += [bytes(p) for p in ctx.encode(frame)]
    units += [bytes(p) for p in ctx.encode(None)]
    assert len(units) == FRAMES
    return units


def _normalised(access_unit: bytes) -> bytes:
    return b"".join(START_CODE + u for u in split_annexb(access_unit))


def _packetise(clip: list[bytes], first_sequence: int = 65530) -> list[list[RtpPacket]]:
    packetizer = H264Packetizer(SSRC, PT, max_payload=MAX_PAYLOAD, first_sequence=first_sequence)
    return [
        [parse_rtp(p) for p in packetizer.packets(au, i * TICKS_PER_FRAME)]
        for i, au in enumerate(clip)
    ]


def _is_key(access_unit: bytes) -> bool:
    return any(nal_type(u) == 5 for u in split_annexb(access_unit))


def test_packetise_depacketise_round_trip_and_decode(clip: list[bytes]) -> None:
    packetizer = H264Packetizer(SSRC, PT, max_payload=MAX_PAYLOAD, first_sequence=65530)
    depacketizer = H264Depacketizer()
    sequences: list[int] = []
    received: list[tuple[bytes, int, bool]] = []
    fu_packets = 0
    for i, au in enumerate(clip):
        packets = [parse_rtp(p) for p in packetizer.packets(au, i * TICKS_PER_FRAME)]
        assert packets
        assert [p.marker for p in packets] == [False] * (len(packets) - 1) + [True]
        fu_open = False
        for p in packets:
            assert len(p.payload) <= MAX_PAYLOAD
            assert (p.payload_type, p.ssrc, p.timestamp) == (PT, SSRC, i * TICKS_PER_FRAME)
            sequences.append(p.sequence)
            if p.payload[0] & 0x1F == 28:
                fu_packets += 1
                start, end = bool(p.payload[1] & 0x80), bool(p.payload[1] & 0x40)
                assert start != fu_open  # S only on the first fragment
                fu_open = not end
            else:
                assert not fu_open
                assert 1 <= p.payload[0] & 0x1F <= 23
            received += depacketizer.push(p)
        assert not fu_open
    assert fu_packets > 0
    assert sequences[:7] == [65530, 65531, 65532, 65533, 65534, 65535, 0]
    assert all((b - a) % 65536 == 1 for a, b in itertools.pairwise(sequences))
    assert packetizer.sequence == (sequences[-1] + 1) % 65536

    assert [au for au, _, _ in received] == [_normalised(au) for au in clip]
    assert [ts for _, ts, _ in received] == [i * TICKS_PER_FRAME for i in range(FRAMES)]
    assert [key for _, _, key in received] == [_is_key(au) for au in clip]
    assert received[0][2] and received[GOP][2] and not received[1][2]
    assert (depacketizer.lost_frames, depacketizer.dropped_packets) == (0, 0)
    assert not depacketizer.waiting_keyframe

    decoder = av.CodecContext.create("h264", "r")
    frames = []
    for au, _, _ in received:
        frames += decoder.decode(av.Packet(au))
    frames += decoder.decode(None)
    assert len(frames) == FRAMES
    assert (frames[0].width, frames[0].height) == (WIDTH, HEIGHT)


def test_packetizer_splits_exact_sizes() -> None:
    nal = bytes([0x65]) + bytes(range(256)) * 10  # 2561-byte IDR slice
    packets = [
        parse_rtp(p) for p in H264Packetizer(1, 96, max_payload=100).packets(START_CODE + nal, 0)
    ]
    assert all(len(p.payload) <= 100 for p in packets)
    assert len(packets) == -(-(len(nal) - 1) // 98)
    assert packets[0].payload[:2] == bytes((0x7C, 0x85))  # NRI 3, FU-A; S + type 5
    assert packets[-1].payload[1] == 0x45  # E + type 5
    assert all(p.payload[1] == 0x05 for p in packets[1:-1])
    assert bytes([0x65]) + b"".join(p.payload[2:] for p in packets) == nal
    small = H264Packetizer(1, 96).packets(START_CODE + SPS + START_CODE + PPS, 0)
    assert [parse_rtp(p).payload for p in small] == [SPS, PPS]


def test_packetizer_mode0_and_edges() -> None:
    big = bytes([0x65]) + b"\x11" * 3000
    mode0 = H264Packetizer(1, 96, packetization_mode=0, first_sequence=65535)
    packets = [parse_rtp(p) for p in mode0.packets(START_CODE + big, 90000)]
    assert [p.payload for p in packets] == [big]  # oversized but a single NAL unit packet
    assert packets[0].marker and packets[0].sequence == 65535
    assert mode0.sequence == 0
    assert mode0.packets(b"", 0) == [] and mode0.sequence == 0
    wrapped = parse_rtp(mode0.packets(START_CODE + SPS, (1 << 32) + 5)[0])
    assert wrapped.timestamp == 5
    for kwargs in ({"packetization_mode": 2}, {"max_payload": 2}, {"first_sequence": 65536}):
        with pytest.raises(H264RtpError):
            H264Packetizer(1, 96, **kwargs)
    with pytest.raises(ValueError):
        H264Packetizer(1, 128)


def _rtp(payload: bytes, seq: int, ts: int, marker: bool = False, ssrc: int = SSRC) -> RtpPacket:
    return RtpPacket(marker, PT, seq % 65536, ts, ssrc, payload)


def _stap_a(*units: bytes) -> bytes:
    return bytes([0x78]) + b"".join(len(u).to_bytes(2, "big") + u for u in units)


IDR = bytes([0x65, 0x88, 0x84, 0x21, 0xA0])
NON_IDR = bytes([0x41, 0x9A, 0x02, 0x03])


def test_stap_a_depacketises_to_both_nals() -> None:
    d = H264Depacketizer()
    assert d.push(_rtp(_stap_a(SPS, PPS), 1, 100)) == []
    out = d.push(_rtp(IDR, 2, 100, marker=True))
    assert out == [(START_CODE + SPS + START_CODE + PPS + START_CODE + IDR, 100, True)]


def test_stap_a_alone_is_a_keyframe_access_unit() -> None:
    d = H264Depacketizer()
    out = d.push(_rtp(_stap_a(SPS, PPS), 1, 100, marker=True))
    assert out == [(START_CODE + SPS + START_CODE + PPS, 100, True)]


def test_lost_fu_a_fragment_drops_frame_and_waits_for_idr(clip: list[bytes]) -> None:
    aus = _packetise(clip)
    victim = 2  # a P frame between the IDRs at 0 and GOP
    assert not _is_key(clip[victim]) and len(aus[victim]) >= 3
    assert aus[victim][1].payload[0] & 0x1F == 28
    d = H264Depacketizer()
    emitted: list[int] = []
    waiting: list[bool] = []
    for i, packets in enumerate(aus):
        for n, p in enumerate(packets):
            if i == victim and n == 1:
                continue
            emitted += [ts // TICKS_PER_FRAME for _, ts, _ in d.push(p)]
        waiting.append(d.waiting_keyframe)
    assert d.lost_frames == 1
    assert emitted == [0, 1, *range(GOP, FRAMES)]
    assert waiting[:victim] == [False] * victim
    assert waiting[victim:GOP] == [True] * (GOP - victim)
    assert not any(waiting[GOP:])
    assert d.skipped_frames == GOP - victim - 1
    decoder = av.CodecContext.create("h264", "r")
    # what was emitted after the loss starts with a decodable keyframe
    assert len(decoder.decode(av.Packet(_normalised(clip[GOP])))) + len(decoder.decode(None)) == 1


def test_gap_at_access_unit_boundary_damages_the_next_frame() -> None:
    d = H264Depacketizer()
    assert d.push(_rtp(IDR, 10, 0, marker=True))
    # seq 11 (the first packet of the frame at 3600) is lost
    assert d.push(_rtp(NON_IDR, 12, 3600, marker=True)) == []
    assert d.lost_frames == 1 and d.waiting_keyframe
    assert d.push(_rtp(NON_IDR, 13, 7200, marker=True)) == []
    assert d.push(_rtp(IDR, 14, 10800, marker=True)) == [(START_CODE + IDR, 10800, True)]
    assert not d.waiting_keyframe


def test_timestamp_change_without_marker_closes_access_unit() -> None:
    d = H264Depacketizer()
    assert d.push(_rtp(SPS, 1, 1000)) == []
    assert d.push(_rtp(IDR, 2, 1000)) == []  # marker lost or never sent
    out = d.push(_rtp(NON_IDR, 3, 4600))
    assert out == [(START_CODE + SPS + START_CODE + IDR, 1000, True)]
    assert d.push(_rtp(NON_IDR, 4, 4600, marker=True)) == [
        (START_CODE + NON_IDR + START_CODE + NON_IDR, 4600, False)
    ]
    assert d.lost_frames == 0


def test_starts_waiting_for_a_keyframe() -> None:
    d = H264Depacketizer()
    assert d.waiting_keyframe
    assert d.push(_rtp(NON_IDR, 1, 0, marker=True)) == []
    assert d.skipped_frames == 1
    assert d.push(_rtp(IDR, 2, 3600, marker=True))


@pytest.mark.parametrize(
    "payload",
    [
        b"",  # empty
        bytes([0x00, 0x11]),  # NAL type 0
        bytes([0x1F]),  # NAL type 31
    ],
)
def test_ignored_payloads_are_counted_without_damage(payload: bytes) -> None:
    d = H264Depacketizer()
    assert d.push(_rtp(IDR, 1, 0)) == []
    assert d.push(_rtp(payload, 2, 0, marker=True)) == [(START_CODE + IDR, 0, True)]
    assert d.dropped_packets == 1 and d.lost_frames == 0


@pytest.mark.parametrize(
    "payload",
    [
        bytes([0x7C]),  # truncated FU-A: no FU header
        bytes([0x7C, 0x05, 0xAA]),  # FU-A middle fragment without a start
        bytes([0x78, 0x00]),  # STAP-A with a truncated size
        bytes([0x78, 0x00, 0x09, 0x67]),  # STAP-A size beyond the payload
        bytes([0x78]),  # STAP-A with no NAL units
        bytes([0x79, 0x00, 0x01, 0x00, 0x01, 0x67]),  # STAP-B
        bytes([0x7A, 0x00]),  # MTAP16
        bytes([0x7B, 0x00]),  # MTAP24
        bytes([0x7D, 0x85, 0x00, 0x00, 0xAA]),  # FU-B
    ],
)
def test_damaging_payloads_drop_the_access_unit(payload: bytes) -> None:
    d = H264Depacketizer()
    assert d.push(_rtp(IDR, 1, 0)) == []
    assert d.push(_rtp(payload, 2, 0, marker=True)) == []
    assert d.dropped_packets == 1 and d.lost_frames == 1 and d.waiting_keyframe
    assert d.push(_rtp(IDR, 3, 3600, marker=True)) == [(START_CODE + IDR, 3600, True)]


def test_fu_a_start_inside_unfinished_fragment_damages() -> None:
    d = H264Depacketizer()
    assert d.push(_rtp(bytes([0x7C, 0x85, 1, 2]), 1, 0)) == []
    assert d.push(_rtp(bytes([0x7C, 0x85, 3, 4]), 2, 0)) == []
    assert d.push(_rtp(bytes([0x7C, 0x45, 5]), 3, 0, marker=True)) == []
    assert d.lost_frames == 1
    # a fragment left open when the access unit ends also damages it
    assert d.push(_rtp(bytes([0x7C, 0x85, 1, 2]), 4, 3600, marker=True)) == []
    assert d.lost_frames == 2


def test_random_garbage_never_raises() -> None:
    rng = np.random.default_rng(1)
    d = H264Depacketizer(max_access_unit=4096)
    for seq in range(3000):
        size = int(rng.integers(0, 40))
        payload = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        for au, _, _ in d.push(_rtp(payload, seq, seq // 5 * 3600, marker=bool(seq % 7 == 0))):
            assert au.startswith(START_CODE)
    assert d.dropped_packets > 0


def test_max_access_unit_bounds_memory() -> None:
    d = H264Depacketizer(max_access_unit=100)
    assert d.push(_rtp(bytes([0x7C, 0x85]) + b"\x01" * 60, 1, 0)) == []
    assert d.push(_rtp(bytes([0x7C, 0x45]) + b"\x01" * 60, 2, 0, marker=True)) == []
    assert d.lost_frames == 1


def test_late_duplicate_and_ssrc_change() -> None:
    d = H264Depacketizer()
    assert d.push(_rtp(IDR, 65535, 0, marker=True))
    assert d.push(_rtp(IDR, 65535, 0, marker=True)) == []  # duplicate
    assert d.dropped_packets == 1
    assert d.push(_rtp(NON_IDR, 0, 3600, marker=True)) == [(START_CODE + NON_IDR, 3600, False)]
    # a new SSRC restarts sequence tracking and waits for a keyframe
    assert d.push(_rtp(NON_IDR, 500, 7200, marker=True, ssrc=5)) == []
    assert d.waiting_keyframe and d.lost_frames == 0
    assert d.push(_rtp(IDR, 501, 10800, marker=True, ssrc=5))
    # a far jump backwards is a sender restart: a gap, not a late packet
    assert d.push(_rtp(IDR, 100, 14400, marker=True, ssrc=5)) == []
    assert d.lost_frames == 1


def test_fmtp_params() -> None:
    assert fmtp_params("profile-level-id=42E01F; Packetization-Mode=1;level-asymmetry-allowed") == {
        "profile-level-id": "42E01F",
        "packetization-mode": "1",
        "level-asymmetry-allowed": "",
    }
    assert fmtp_params("") == {}


BARESIP = [
    (96, "packetization-mode=0;profile-level-id=42e01f"),
    (97, "packetization-mode=1;profile-level-id=42e01f"),
]
CHROME = [
    (102, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f"),
    (104, "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f"),
    (106, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"),
    (108, "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f"),
    (127, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f"),
    (39, "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=4d001f"),
    (112, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f"),
]


@pytest.mark.parametrize(
    ("offers", "expected"),
    [
        (BARESIP, H264Choice(97, "42e01f", 1)),
        (CHROME, H264Choice(106, "42e01f", 1)),
        ([(99, "")], H264Choice(99, "42000a", 0)),
        ([(99, "packetization-mode=1")], H264Choice(99, "42000a", 1)),
        (
            [(100, "profile-level-id=64001F;packetization-mode=1"), (101, "")],
            H264Choice(100, "64001f", 1),
        ),
        (
            [(100, "profile-level-id=64001f"), (101, "profile-level-id=4d001f")],
            H264Choice(100, "64001f", 0),
        ),
        (
            [(100, "profile-level-id=4d001f"), (101, "profile-level-id=42c01e")],
            H264Choice(101, "42c01e", 0),
        ),
        ([(100, "profile-level-id=zz;packetization-mode=1"), (101, "packetization-mode=2")], None),
        ([], None),
    ],
)
def test_choose_h264(offers: list[tuple[int, str]], expected: H264Choice | None) -> None:
    assert choose_h264(offers) == expected


def test_negotiate_h264_filters_profiles() -> None:
    assert negotiate_h264(CHROME) == H264Choice(106, "42e01f", 1)
    assert negotiate_h264(CHROME, accept_profiles=("4D",)) == H264Choice(127, "4d001f", 1)
    assert negotiate_h264(CHROME, accept_profiles=("58",)) is None
