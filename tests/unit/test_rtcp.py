"""Minimal RTCP (protocols/rtp/rtcp.py): keyframe requests built as RFC 3550 compounds,
parsed back; malformed input never escapes as anything but RtcpError (parse) or a flag
(scan)."""

from __future__ import annotations

import contextlib
import random

import pytest

from protocols.rtp.rtcp import (
    FMT_FIR,
    FMT_PLI,
    PT_BYE,
    PT_PSFB,
    PT_RR,
    PT_SDES,
    RtcpError,
    build_bye,
    build_fir,
    build_pli,
    build_rr,
    is_rtcp,
    keyframe_request,
    parse_rtcp,
    scan_rtcp,
)


def test_a_keyframe_request_is_a_compound_starting_with_a_report() -> None:
    data = keyframe_request(0x11111111, 0x22222222, fir_sequence=7)
    packets = parse_rtcp(data)
    assert [p.packet_type for p in packets] == [PT_RR, PT_SDES, PT_PSFB, PT_PSFB]
    assert all(p.ssrc == 0x11111111 for p in packets)
    pli, fir = packets[2], packets[3]
    assert pli.count == FMT_PLI and pli.media_ssrc == 0x22222222
    assert fir.count == FMT_FIR and fir.media_ssrc == 0  # RFC 5104: target is in the FCI
    assert fir.body[8:12] == (0x22222222).to_bytes(4, "big") and fir.body[12] == 7
    assert b"hub" in packets[1].body
    events = scan_rtcp(data)
    assert events.pli and events.fir and events.keyframe_request and not events.bye
    assert not events.malformed and events.packets == 4


def test_pli_only_and_fir_only() -> None:
    only_pli = scan_rtcp(keyframe_request(1, 2))
    assert only_pli.pli and not only_pli.fir
    only_fir = scan_rtcp(keyframe_request(1, 2, pli=False, fir_sequence=300))
    assert only_fir.fir and not only_fir.pli
    assert parse_rtcp(build_fir(1, 2, 300))[0].body[12] == 300 % 256
    # a bare feedback packet (RFC 5506 reduced size) is still understood
    assert scan_rtcp(build_pli(1, 2)).pli


def test_bye_is_seen_with_its_ssrc() -> None:
    events = scan_rtcp(build_bye(0xCAFE))
    assert events.bye and events.bye_ssrcs == (0xCAFE,)
    assert [p.packet_type for p in parse_rtcp(build_bye(0xCAFE))] == [PT_RR, PT_BYE]


def test_padding_is_removed() -> None:
    rr = bytearray(build_rr(5) + b"\x00\x00\x00\x04")
    rr[0] |= 0x20
    rr[3] = 2  # two words: SSRC + padding word
    (packet,) = parse_rtcp(bytes(rr))
    assert packet.body == (5).to_bytes(4, "big")


def test_rtcp_and_rtp_are_told_apart_on_one_port() -> None:
    assert is_rtcp(build_rr(1))
    assert not is_rtcp(bytes((0x80, 96)) + bytes(10))  # RTP, payload type 96
    assert not is_rtcp(bytes((0x80, 0xE0)) + bytes(10))  # RTP, marker + payload type 96
    assert not is_rtcp(b"\x80")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80",
        b"\x40\xc9\x00\x01\x00\x00\x00\x00",  # version 1
        b"\x80\xc9\x00\x05\x00\x00\x00\x00",  # length past the end
        b"\x80\x60\x00\x01\x00\x00\x00\x00",  # not an RTCP packet type
        build_rr(1) + b"\x80\xce",  # trailing half header
        b"\xa0\xc9\x00\x01\x00\x00\x00\x00",  # padding flag with padding 0
    ],
)
def test_malformed_packets_raise_rtcp_error_or_are_flagged(data: bytes) -> None:
    with pytest.raises(RtcpError):
        parse_rtcp(data)
    assert scan_rtcp(data).malformed


def test_a_malformed_tail_keeps_what_came_before() -> None:
    events = scan_rtcp(keyframe_request(1, 2) + b"\x80\xcb\x00\x09")
    assert events.pli and events.malformed


def test_garbage_never_raises_anything_else() -> None:
    rng = random.Random(1)
    valid = keyframe_request(1, 2, fir_sequence=1) + build_bye(3)
    for _ in range(5000):
        if rng.random() < 0.5:
            data = bytes(rng.getrandbits(8) for _ in range(rng.randrange(40)))
        else:
            mutated = bytearray(valid)
            for _ in range(rng.randrange(1, 4)):
                mutated[rng.randrange(len(mutated))] = rng.getrandbits(8)
            data = bytes(mutated[: rng.randrange(len(mutated) + 1)])
        scan_rtcp(data)
        with contextlib.suppress(RtcpError):
            parse_rtcp(data)


def test_out_of_range_values_are_refused() -> None:
    with pytest.raises(RtcpError):
        build_pli(1 << 32, 1)
    with pytest.raises(RtcpError):
        build_rr(-1)
