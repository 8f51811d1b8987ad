"""G.711 codecs, bit-exact against the stdlib ``audioop`` reference (deprecated in 3.11)."""

from __future__ import annotations

import struct
import warnings
from types import ModuleType

import pytest

from protocols.rtp import g711

ALL_SAMPLES = struct.pack("<65536h", *range(-32768, 32768))
ALL_CODES = bytes(range(256))


@pytest.fixture(scope="module")
def audioop() -> ModuleType:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop as module
    return module


def test_ulaw_encode_matches_audioop_for_every_sample(audioop: ModuleType) -> None:
    assert g711.ulaw_encode(ALL_SAMPLES) == audioop.lin2ulaw(ALL_SAMPLES, 2)


def test_alaw_encode_matches_audioop_for_every_sample(audioop: ModuleType) -> None:
    assert g711.alaw_encode(ALL_SAMPLES) == audioop.lin2alaw(ALL_SAMPLES, 2)


def test_ulaw_decode_matches_audioop_for_every_code(audioop: ModuleType) -> None:
    assert g711.ulaw_decode(ALL_CODES) == audioop.ulaw2lin(ALL_CODES, 2)


def test_alaw_decode_matches_audioop_for_every_code(audioop: ModuleType) -> None:
    assert g711.alaw_decode(ALL_CODES) == audioop.alaw2lin(ALL_CODES, 2)


def test_known_codes() -> None:
    # silence is 0xFF in mu-law and 0xD5 in A-law; full scale saturates
    assert g711.ulaw_encode(struct.pack("<3h", 0, 32767, -32768)) == bytes((0xFF, 0x80, 0x00))
    assert g711.alaw_encode(struct.pack("<3h", 0, 32767, -32768)) == bytes((0xD5, 0xAA, 0x2A))


def test_round_trip_is_stable() -> None:
    for encode, decode in (
        (g711.ulaw_encode, g711.ulaw_decode),
        (g711.alaw_encode, g711.alaw_decode),
    ):
        codes = encode(decode(ALL_CODES))
        assert codes == ALL_CODES or decode(codes) == decode(ALL_CODES)


def test_lengths_and_types() -> None:
    assert g711.ulaw_encode(b"") == b""
    assert g711.alaw_decode(b"") == b""
    assert len(g711.ulaw_decode(b"\x00" * 160)) == 320
    assert isinstance(g711.alaw_encode(b"\x00\x00"), bytes)
    with pytest.raises(ValueError):
        g711.ulaw_encode(b"\x00\x00\x00")
    with pytest.raises(ValueError):
        g711.alaw_encode(b"\x00")


def test_payload_types() -> None:
    assert g711.G711_PAYLOAD_TYPES == {"PCMU": 0, "PCMA": 8}
