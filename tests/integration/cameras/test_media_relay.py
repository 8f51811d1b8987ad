"""The media plane's pure parts: the bounded relay (slow and flushed viewers skip to the next
keyframe, late viewers start from the cached GOP), timestamp cleanup, H.264 parameter sets,
backoff."""

from __future__ import annotations

from fractions import Fraction

from streams.h264 import avcc_to_annexb, has_sps, parameter_sets, profile_level_id
from streams.relay import CameraRelay, RelayCounters
from streams.source import MediaPacket, TimestampCleaner
from streams.whep import OfferError, choose_codec

TB = Fraction(1, 90000)
SPS = bytes.fromhex("6764001eacd940a02ff9610000030001000003003c8f162d96")
PPS = bytes.fromhex("68ebe3cb22c0")


def packet(n: int, keyframe: bool) -> MediaPacket:
    return MediaPacket(bytes([n % 256]) * 10, n * 3600, n * 3600, keyframe, TB)


def test_slow_viewer_is_skipped_to_the_next_keyframe_and_memory_stays_bounded() -> None:
    counters = RelayCounters()
    relay = CameraRelay(counters, max_queue=10, gop_max_packets=100, gop_max_bytes=1 << 20)
    fast, slow = relay.attach(), relay.attach()
    for n in range(25):  # GOP of 20: keyframes at 0 and 20
        relay.publish(packet(n, keyframe=n % 20 == 0))
        if n < 24:
            fast._queue.get_nowait()  # the fast viewer keeps up
    assert slow._queue.qsize() <= 10
    assert counters.viewers_skipped >= 1
    first = slow._queue.get_nowait()
    assert first is not None and first.keyframe and first.pts == 20 * 3600
    assert fast._queue.qsize() == 1


def test_a_flushed_viewer_drops_its_backlog_and_resumes_at_a_keyframe() -> None:
    counters = RelayCounters()
    relay = CameraRelay(counters, max_queue=50, gop_max_packets=100, gop_max_bytes=1 << 20)
    viewer = relay.attach()
    for n in range(8):
        relay.publish(packet(n, keyframe=n == 0))
    viewer.flush(counters)
    assert viewer.drain() == [] and counters.packets_skipped == 8
    relay.publish(packet(8, keyframe=False))  # a delta frame of the dropped GOP: useless
    relay.publish(packet(9, keyframe=True))
    assert [p.pts // 3600 for p in viewer.drain() if p] == [9]
    relay.detach(viewer)
    viewer.flush(counters)
    assert viewer.drain() == [None]  # the end of the stream survives a flush


def test_a_relay_flush_spares_kept_viewers() -> None:
    counters = RelayCounters()
    relay = CameraRelay(counters, max_queue=50, gop_max_packets=100, gop_max_bytes=1 << 20)
    slot, recording = relay.attach(), relay.attach(keep=True)
    for n in range(5):
        relay.publish(packet(n, keyframe=n == 0))
    relay.flush()
    assert slot.drain() == [] and slot.waiting_keyframe
    assert [p.pts // 3600 for p in recording.drain() if p] == [0, 1, 2, 3, 4]


def test_late_viewer_starts_with_the_cached_gop() -> None:
    relay = CameraRelay(RelayCounters(), max_queue=50, gop_max_packets=100, gop_max_bytes=1 << 20)
    for n in range(30):
        relay.publish(packet(n, keyframe=n % 20 == 0))
    late = relay.attach()
    items = [late._queue.get_nowait() for _ in range(late._queue.qsize())]
    assert [i.pts // 3600 for i in items if i] == list(range(20, 30))
    assert items[0] is not None and items[0].keyframe


def test_timestamps_missing_or_backwards_are_dropped_and_the_timeline_survives_reconnects() -> None:
    clean = TimestampCleaner()
    assert clean.clean(None, None) == (0, 0)  # RTSP's first packet often has no time
    assert clean.clean(3600, 3600) == (3600, 3600)
    assert clean.clean(3600, 3600) is None  # not advancing
    assert clean.clean(None, None) is None
    assert clean.clean(7200, None) == (7200, 7200)  # DTS from PTS
    clean.new_session()
    out = clean.clean(900_000, 900_000)
    assert out is not None and out[1] > 7200  # continues after the old timeline


def test_avcc_extradata_becomes_annexb_parameter_sets() -> None:
    avcc = (
        bytes([1, 0x64, 0x00, 0x1E, 0xFF, 0xE1])
        + len(SPS).to_bytes(2, "big")
        + SPS
        + bytes([1])
        + len(PPS).to_bytes(2, "big")
        + PPS
    )
    annexb = avcc_to_annexb(avcc)
    assert annexb == b"\x00\x00\x00\x01" + SPS + b"\x00\x00\x00\x01" + PPS
    assert parameter_sets(avcc) == annexb
    assert has_sps(annexb)
    assert profile_level_id(annexb) == "64001e"


def test_offer_without_a_playable_profile_is_refused() -> None:
    offer = (
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
        "m=video 9 UDP/TLS/RTP/SAVPF 102\r\nc=IN IP4 0.0.0.0\r\na=recvonly\r\na=mid:0\r\n"
        "a=rtpmap:102 H264/90000\r\n"
        "a=fmtp:102 packetization-mode=1;profile-level-id=42e01f\r\n"
    )
    try:
        choose_codec(offer, "64001e")
    except OfferError as err:
        assert err.code == "camera.codec_unsupported"
    else:
        raise AssertionError("a baseline-only viewer cannot play High")
    assert choose_codec(offer, "42e01f").codec.payloadType == 102
