"""GB/T 28181 PTZCmd encoding and parsing (appendix A.3)."""

import pytest

from protocols.gb28181.ptz import (
    PRESET_GOTO,
    PTZ_STOP,
    PtzCommand,
    encode_ptz,
    parse_ptz,
    preset_hex,
    ptz_from_velocity,
    ptz_hex,
)


def _checksum(hex_text: str) -> int:
    raw = bytes.fromhex(hex_text)
    return sum(raw[:7]) % 256


def test_stop_is_the_well_known_a50f0100000000b5() -> None:
    assert ptz_hex(PTZ_STOP) == "A50F0100000000B5"


def test_right_at_speed_1f_sets_bit0_and_pan_speed() -> None:
    text = ptz_hex(PtzCommand(1, 0, 0, 0x1F, 0, 0))
    assert text[:8] == "A50F0101"
    assert text[8:10] == "1F"
    assert int(text[14:], 16) == _checksum(text) == (0xA5 + 0x0F + 0x01 + 0x01 + 0x1F) % 256


@pytest.mark.parametrize(
    ("cmd", "instruction"),
    [
        (PtzCommand(-1, 0, 0, 10, 0, 0), 0x02),
        (PtzCommand(0, -1, 0, 0, 10, 0), 0x04),
        (PtzCommand(0, 1, 0, 0, 10, 0), 0x08),
        (PtzCommand(0, 0, 1, 0, 0, 3), 0x10),
        (PtzCommand(0, 0, -1, 0, 0, 3), 0x20),
        (PtzCommand(1, 1, 0, 5, 5, 0), 0x09),
    ],
)
def test_direction_bits_follow_table_a2(cmd: PtzCommand, instruction: int) -> None:
    raw = encode_ptz(cmd)
    assert raw[3] == instruction
    assert raw[7] == sum(raw[:7]) % 256
    assert parse_ptz(raw) == cmd


def test_zoom_speed_and_address_share_byte7() -> None:
    raw = encode_ptz(PtzCommand(0, 0, 1, 0, 0, 0xA, address=0x312))
    assert raw[2] == 0x12
    assert raw[6] == 0xA3
    assert parse_ptz(raw.hex()).address == 0x312


def test_check_nibble_and_checksum_are_verified() -> None:
    good = ptz_hex(PtzCommand(1, 0, 0, 0x1F, 0, 0))
    with pytest.raises(ValueError, match="checksum"):
        parse_ptz(good[:14] + "00")
    with pytest.raises(ValueError, match="check nibble"):
        parse_ptz(good[:2] + "0E" + good[4:])
    with pytest.raises(ValueError, match="A5"):
        parse_ptz("B5" + good[2:])
    with pytest.raises(ValueError):
        parse_ptz("A50F")


def test_preset_is_not_a_ptz_move() -> None:
    text = preset_hex(PRESET_GOTO, 3)
    assert text[6:8] == "82" and text[10:12] == "03"
    with pytest.raises(ValueError, match="not a PTZ move"):
        parse_ptz(text)


def test_out_of_range_values_are_refused() -> None:
    with pytest.raises(ValueError):
        encode_ptz(PtzCommand(2, 0, 0, 0, 0, 0))
    with pytest.raises(ValueError):
        encode_ptz(PtzCommand(0, 0, 0, 256, 0, 0))
    with pytest.raises(ValueError):
        encode_ptz(PtzCommand(0, 0, 0, 0, 0, 16))


def test_velocity_maps_to_directions_and_scaled_speeds() -> None:
    cmd = ptz_from_velocity(0.5, -1.0, 1.0)
    assert (cmd.pan, cmd.tilt, cmd.zoom) == (1, -1, 1)
    assert (cmd.pan_speed, cmd.tilt_speed, cmd.zoom_speed) == (128, 255, 15)
    assert ptz_from_velocity(0.0, 0.0, 0.0) == PTZ_STOP
    assert ptz_from_velocity(5.0, 0, 0).pan_speed == 255
    with pytest.raises(ValueError):
        ptz_from_velocity(float("nan"), 0, 0)


@pytest.mark.parametrize(
    ("cmd", "expected"),
    [
        (PtzCommand(1, 0, 0, 0x1F, 0, 0), "A50F01011F0000D5"),  # right, pan speed 0x1F
        (PtzCommand(-1, 0, 0, 0xFF, 0, 0), "A50F0102FF0000B6"),  # left, full speed
        (PtzCommand(0, 1, 0, 0, 0xFA, 0), "A50F010800FA00B7"),  # up, tilt speed 0xFA
        (PtzCommand(0, -1, 0, 0, 0x10, 0), "A50F0104001000C9"),  # down
        (PtzCommand(0, 0, 1, 0, 0, 0xF), "A50F01100000F0B5"),  # zoom in (tele), 15
        (PtzCommand(0, 0, -1, 0, 0, 1), "A50F0120000010E5"),  # zoom out (wide), 1
        (PtzCommand(1, 1, 0, 0x80, 0x40, 0), "A50F01098040007E"),  # up-right
        (PtzCommand(-1, -1, 0, 1, 1, 0), "A50F0106010100BD"),  # down-left
    ],
)
def test_each_direction_and_speed_gives_the_standard_bytes(cmd: PtzCommand, expected: str) -> None:
    # byte 8 = (A5 + 0F + 01 + instruction + pan speed + tilt speed + zoom<<4|addr_hi) mod 256
    raw = bytes.fromhex(expected)
    assert raw[7] == sum(raw[:7]) % 256, "the expected value itself must be consistent"
    assert ptz_hex(cmd) == expected
