"""Hypothesis fuzzing: GB28181 parsers raise only their own error types."""

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.gb28181.manscdp import (
    CatalogItem,
    ManscdpError,
    build_catalog_response,
    catalog_items,
    parse_manscdp,
)
from protocols.gb28181.ps import PsDemuxer, PsError
from protocols.gb28181.ptz import parse_ptz
from protocols.gb28181.rtp import Rfc4571Framer, RtpError, RtpPacket, RtpReorderer, parse_rtp

FUZZ = settings(max_examples=300, deadline=None)
VALID_CATALOG = build_catalog_response(
    1,
    "34020000001320000001",
    2,
    [CatalogItem("34020000001310000001", name="东门", longitude=117.0, ptz_type=1)],
)
VALID_PS = bytes.fromhex(
    "000001ba4400040004018666cff8"
    "000001bc0012e0ff0000000800001be000009000c00000000000"
    "000001e0001c808005210001000100000001674d001f000000016588840000000001"
    "000001c0000b80800521000100011d5d5d"
)


def _mutate(base: bytes, edits: list[tuple[int, int]], cut: int) -> bytes:
    data = bytearray(base)
    for pos, value in edits:
        data[pos % len(data)] = value
    return bytes(data[: max(1, cut % (len(data) + 1))])


edits = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8)


@FUZZ
@given(st.binary(max_size=2000))
def test_parse_manscdp_random_bytes(data: bytes) -> None:
    with contextlib.suppress(ManscdpError):
        catalog_items(parse_manscdp(data))


@FUZZ
@given(edits, st.integers(0, 10_000))
def test_parse_manscdp_mutated_catalog(changes: list[tuple[int, int]], cut: int) -> None:
    with contextlib.suppress(ManscdpError):
        catalog_items(parse_manscdp(_mutate(VALID_CATALOG, changes, cut)))


@FUZZ
@given(st.one_of(st.binary(max_size=12), st.text(max_size=20)))
def test_parse_ptz_only_value_errors(value: bytes | str) -> None:
    with contextlib.suppress(ValueError):
        parse_ptz(value)


@FUZZ
@given(st.binary(max_size=200))
def test_parse_rtp_only_rtp_errors(data: bytes) -> None:
    with contextlib.suppress(RtpError):
        parse_rtp(data)


@FUZZ
@given(st.lists(st.binary(max_size=300), max_size=20))
def test_rfc4571_framer_only_rtp_errors(chunks: list[bytes]) -> None:
    framer = Rfc4571Framer(max_frame=1500)
    try:
        for chunk in chunks:
            framer.feed(chunk)
            assert framer.buffered <= 1500 + 2
    except RtpError:
        pass


@FUZZ
@given(st.lists(st.integers(0, 65535), max_size=200), st.integers(1, 100))
def test_reorderer_delivers_in_order_without_duplicates(seqs: list[int], window: int) -> None:
    reorderer = RtpReorderer(window=window)
    out: list[int] = []
    for seq in seqs:
        out += [p.sequence for p in reorderer.push(RtpPacket(False, 96, seq, 0, 1, b""))]
    out += [p.sequence for p in reorderer.flush()]
    assert len(out) <= len(seqs)
    if reorderer.resets == 0:
        assert len(set(out)) == len(out)


@FUZZ
@given(st.lists(st.binary(max_size=500), max_size=10))
def test_ps_demuxer_random_bytes(chunks: list[bytes]) -> None:
    demuxer = PsDemuxer(max_access_unit=4096, max_buffer=8192)
    try:
        for chunk in chunks:
            demuxer.feed(chunk)
        demuxer.flush()
    except PsError:
        pass


@FUZZ
@given(edits, st.integers(0, 10_000), st.integers(1, 64))
def test_ps_demuxer_mutated_stream(changes: list[tuple[int, int]], cut: int, step: int) -> None:
    data = _mutate(VALID_PS * 3, changes, cut)
    demuxer = PsDemuxer(max_access_unit=4096)
    try:
        for pos in range(0, len(data), step):
            demuxer.feed(data[pos : pos + step])
        demuxer.flush()
    except PsError:
        pass


def test_valid_ps_fixture_really_yields_units() -> None:
    demuxer = PsDemuxer()
    units = demuxer.feed(VALID_PS) + demuxer.flush()
    assert [u.kind for u in units] == ["audio", "video"]
    assert units[1].codec == "h264" and units[1].keyframe
