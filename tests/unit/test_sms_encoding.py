"""protocols/sms encoding: texts pick GSM 7-bit or UCS-2, split at the right counts without
breaking an escape or a surrogate pair, and inbound parts decode and reassemble."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.sms import (
    ESM_UDHI,
    Concat,
    DataCoding,
    InboundPart,
    Reassembler,
    Segment,
    SmsRejected,
    SmsRejectReason,
    choose_coding,
    concat_udh,
    decode_part,
    decode_user_data,
    encode_message,
    parse_udh,
    segment_count,
)
from protocols.sms.gsm7 import BASIC_TABLE, ENCODE, EXTENSION_TABLE, decode_gsm7, encode_gsm7

GSM_CHARS = "".join(ENCODE)
EMOJI = "\U0001f600"  # outside the BMP: a surrogate pair in UTF-16


def joined_text(segments: list[Segment]) -> str:
    return "".join(decode_user_data(s.payload, s.data_coding) for s in segments)


# --- choosing the coding and counting --------------------------------------------------


def test_gsm_text_uses_data_coding_0_and_other_text_ucs2() -> None:
    assert choose_coding("Hello @home, £5 & Δ") is DataCoding.GSM7
    assert choose_coding("price 5€ [a] {b} ^~\\|") is DataCoding.GSM7
    assert choose_coding("网格员请到 3 号楼") is DataCoding.UCS2
    assert choose_coding("tab\there") is DataCoding.UCS2  # TAB is not in GSM 03.38
    assert choose_coding("`") is DataCoding.UCS2


@pytest.mark.parametrize(
    ("length", "segments"), [(0, 1), (1, 1), (160, 1), (161, 2), (306, 2), (307, 3)]
)
def test_gsm_limits_are_160_single_and_153_per_part(length: int, segments: int) -> None:
    assert segment_count("a" * length) == segments


@pytest.mark.parametrize(("length", "segments"), [(70, 1), (71, 2), (134, 2), (135, 3)])
def test_ucs2_limits_are_70_single_and_67_per_part(length: int, segments: int) -> None:
    assert segment_count("网" * length) == segments


def test_extension_characters_count_two_septets() -> None:
    assert segment_count("€" * 80) == 1
    assert segment_count("€" * 80 + "a") == 2
    assert segment_count("[" * 81) == 2


def test_characters_outside_the_bmp_count_two_units() -> None:
    assert segment_count(EMOJI * 35) == 1
    assert segment_count(EMOJI * 35 + "a") == 2


# --- encoding --------------------------------------------------------------------------


def test_single_gsm_segment_has_unpacked_octets_and_no_udh() -> None:
    [seg] = encode_message("Hi @€")
    assert seg.data_coding is DataCoding.GSM7
    assert seg.payload == b"Hi \x00\x1b\x65"  # '@' is 0x00, '€' is ESC 0x65, unpacked
    assert seg.udh == b"" and seg.esm_class_bits == 0
    assert seg.short_message == seg.payload


def test_ucs2_is_utf16be_without_bom() -> None:
    [seg] = encode_message("网" + EMOJI)
    assert seg.data_coding is DataCoding.UCS2
    assert seg.payload == "网".encode("utf-16-be") + b"\xd8\x3d\xde\x00"


def test_concatenated_segments_carry_the_8bit_reference_udh() -> None:
    segs = encode_message("x" * 400, ref=0x2A)
    assert [s.udh for s in segs] == [bytes([5, 0, 3, 0x2A, 3, n]) for n in (1, 2, 3)]
    assert [len(s.payload) for s in segs] == [153, 153, 94]
    assert all(s.esm_class_bits == ESM_UDHI for s in segs)
    assert segs[0].short_message == segs[0].udh + segs[0].payload


def test_an_escape_sequence_is_never_split() -> None:
    text = "a" * 152 + "€" + "b" * 10  # the € would straddle the 153rd septet
    first, second = encode_message(text)
    assert first.payload == b"a" * 152
    assert second.payload == b"\x1b\x65" + b"b" * 10


def test_a_surrogate_pair_is_never_split() -> None:
    text = "网" * 66 + EMOJI + "网" * 5  # the pair would straddle the 67th unit
    first, second = encode_message(text)
    assert len(first.payload) == 66 * 2
    assert second.payload.startswith(b"\xd8\x3d\xde\x00")


def test_too_many_segments_is_a_typed_rejection() -> None:
    encode_message("a" * 153 * 3, max_segments=3)
    with pytest.raises(SmsRejected) as info:
        encode_message("a" * (153 * 3 + 1), max_segments=3)
    assert info.value.reason is SmsRejectReason.TOO_MANY_SEGMENTS


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"ref": 256}, SmsRejectReason.BAD_ARGUMENT),
        ({"ref": -1}, SmsRejectReason.BAD_ARGUMENT),
        ({"max_segments": 0}, SmsRejectReason.BAD_ARGUMENT),
        ({"max_segments": 256}, SmsRejectReason.BAD_ARGUMENT),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, int], reason: SmsRejectReason) -> None:
    with pytest.raises(SmsRejected) as info:
        encode_message("hi", **kwargs)
    assert info.value.reason is reason


def test_lone_surrogate_is_unencodable() -> None:
    with pytest.raises(SmsRejected) as info:
        encode_message("bad \ud800")
    assert info.value.reason is SmsRejectReason.UNENCODABLE


TEXTS = st.text(alphabet=st.sampled_from(GSM_CHARS), max_size=700) | st.text(
    alphabet=st.characters(exclude_categories=["Cs"]), max_size=400
)


@settings(max_examples=300, deadline=None)
@given(TEXTS)
def test_segments_join_back_to_the_text_and_respect_the_limits(text: str) -> None:
    segs = encode_message(text, max_segments=255)
    assert joined_text(segs) == text
    assert len(segs) == segment_count(text)
    coding = segs[0].data_coding
    assert all(s.data_coding is coding for s in segs)
    unit = 1 if coding is DataCoding.GSM7 else 2
    limit = (160 if coding is DataCoding.GSM7 else 70) if len(segs) == 1 else None
    for seq, seg in enumerate(segs, start=1):
        cap = limit or (153 if coding is DataCoding.GSM7 else 67)
        assert len(seg.payload) <= cap * unit
        if coding is DataCoding.GSM7:
            assert not seg.payload.endswith(b"\x1b")  # no dangling escape
        if coding is DataCoding.UCS2 and seg.payload:
            assert not 0xD8 <= seg.payload[-2] <= 0xDB  # no dangling high surrogate
        if len(segs) > 1:
            assert parse_udh(seg.udh) == Concat(0, len(segs), seq)


# --- GSM table and inbound decoding ----------------------------------------------------


def test_gsm_table_round_trips_every_character() -> None:
    assert decode_gsm7(encode_gsm7(GSM_CHARS)) == GSM_CHARS
    assert len(EXTENSION_TABLE) == 10 and BASIC_TABLE[0] == "@"


def test_unknown_escape_shows_the_basic_character_and_trailing_escape_is_dropped() -> None:
    assert decode_gsm7(b"\x1bA") == "A"
    assert decode_gsm7(b"ok\x1b") == "ok"


def test_inbound_decoding_of_each_coding() -> None:
    assert decode_part(b"Hi\x00", data_coding=0, esm_class=0).text == "Hi@"
    assert decode_part(b"[ok]", data_coding=1, esm_class=0).text == "[ok]"
    assert decode_part("café".encode("latin-1"), data_coding=3, esm_class=0).text == "café"
    part = decode_part("网格".encode("utf-16-be"), data_coding=8, esm_class=0)
    assert part == InboundPart("网格", DataCoding.UCS2, "网格".encode("utf-16-be"))


@pytest.mark.parametrize(
    ("payload", "coding", "reason"),
    [
        (b"\x80", 0, SmsRejectReason.BAD_TEXT),
        (b"\x80", 1, SmsRejectReason.BAD_TEXT),
        (b"\x00\x41\x00", 8, SmsRejectReason.BAD_TEXT),
        (b"x", 4, SmsRejectReason.UNSUPPORTED_CODING),
    ],
)
def test_bad_inbound_text_is_refused(payload: bytes, coding: int, reason: SmsRejectReason) -> None:
    with pytest.raises(SmsRejected) as info:
        decode_part(payload, data_coding=coding, esm_class=0)
    assert info.value.reason is reason


def test_udh_is_stripped_and_parsed_when_udhi_is_set() -> None:
    part = decode_part(concat_udh(7, 2, 1) + b"abc", data_coding=0, esm_class=ESM_UDHI)
    assert part.text == "abc" and part.concat == Concat(7, 2, 1)
    sixteen = bytes([6, 0x08, 4, 0x12, 0x34, 3, 2]) + b"xy"
    assert decode_part(sixteen, data_coding=0, esm_class=ESM_UDHI).concat == Concat(0x1234, 3, 2)
    other_ie = bytes([4, 0x24, 2, 0, 0]) + b"z"  # an unrelated IE is skipped
    assert decode_part(other_ie, data_coding=0, esm_class=ESM_UDHI).concat is None


@pytest.mark.parametrize(
    "short_message",
    [
        b"",
        bytes([9, 0, 3, 1, 2, 1]),
        bytes([5, 0, 3, 1, 2, 3]),  # part 3 of 2
        bytes([5, 0, 3, 1, 0, 0]),
        bytes([4, 0, 2, 1, 2]),  # concatenation IE of the wrong length
        bytes([3, 0, 3, 1]),  # IE runs past the UDH
        bytes([1, 0]),
    ],
)
def test_malformed_udh_is_refused(short_message: bytes) -> None:
    with pytest.raises(SmsRejected) as info:
        decode_part(short_message, data_coding=0, esm_class=ESM_UDHI)
    assert info.value.reason is SmsRejectReason.BAD_UDH


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=160), st.sampled_from([0, 1, 3, 4, 8, 0xF0]), st.sampled_from([0, 0x40]))
def test_inbound_garbage_raises_only_sms_rejected(data: bytes, coding: int, esm: int) -> None:
    with contextlib.suppress(SmsRejected):
        decode_part(data, data_coding=coding, esm_class=esm)


# --- reassembly ------------------------------------------------------------------------


def parts_of(text: str, ref: int = 1) -> list[InboundPart]:
    return [
        decode_part(s.short_message, data_coding=s.data_coding, esm_class=s.esm_class_bits)
        for s in encode_message(text, ref=ref)
    ]


def test_parts_in_any_order_reassemble_once_all_are_in() -> None:
    text = "网格员" * 50 + EMOJI * 3
    parts = parts_of(text)
    assert len(parts) == 3
    r = Reassembler()
    assert r.add("+8613800000000", parts[2], now=0) is None
    assert r.add("+8613800000000", parts[0], now=1) is None
    assert r.add("+8613800000000", parts[0], now=1) is None  # a duplicate is ignored
    assert r.add("+8613800000000", parts[1], now=2) == text
    assert len(r) == 0 and r.stats.completed == 1 and r.stats.duplicates == 1


def test_a_single_part_message_passes_straight_through() -> None:
    [part] = parts_of("short")
    assert Reassembler().add("a", part, now=0) == "short"


def test_same_reference_from_different_senders_does_not_mix() -> None:
    a, b = parts_of("A" * 200), parts_of("B" * 200)
    r = Reassembler()
    assert r.add("alice", a[0], now=0) is None
    assert r.add("bob", b[1], now=0) is None
    assert r.add("alice", a[1], now=0) == "A" * 200
    assert r.add("bob", b[0], now=0) == "B" * 200


def test_a_surrogate_pair_split_by_the_sender_heals() -> None:
    raw = ("x" * 66 + EMOJI).encode("utf-16-be")
    udh1, udh2 = concat_udh(9, 2, 1), concat_udh(9, 2, 2)
    p1 = decode_part(udh1 + raw[:134], data_coding=8, esm_class=ESM_UDHI)
    p2 = decode_part(udh2 + raw[134:], data_coding=8, esm_class=ESM_UDHI)
    r = Reassembler()
    r.add("s", p1, now=0)
    assert r.add("s", p2, now=0) == "x" * 66 + EMOJI


def test_pending_messages_are_bounded_and_expire() -> None:
    r = Reassembler(max_pending=2, ttl_s=60)
    for ref in (1, 2, 3):
        r.add("s", parts_of("z" * 200, ref)[0], now=0)
    assert len(r) == 2 and r.stats.evicted == 1
    assert r.expire(now=61) == 2 and len(r) == 0 and r.stats.expired == 2
    first, second = parts_of("q" * 200, 4)
    r.add("s", first, now=100)
    assert r.add("s", second, now=200) is None  # the first part expired meanwhile
