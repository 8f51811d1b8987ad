"""GB/T 28181 front-end device control: the 8-byte PTZCmd of appendix A (A.3).

Byte layout (GB/T 28181-2016 A.3.1, table A.1; same in 2022 and in wvp-GB28181-pro):

====  =============================================================
byte  meaning
====  =============================================================
1     A5H, the command's first byte
2     high nibble: version (0); low nibble: check =
      (byte1 high nibble + byte1 low nibble + byte2 high nibble) mod 16 -> 0FH
3     address, low 8 bits
4     instruction code; for a PTZ move (A.3.2, table A.2) bits 7-6 are 00 and
      bit0 right, bit1 left, bit2 down, bit3 up, bit4 zoom in (tele),
      bit5 zoom out (wide); 00H is stop
5     data 1: horizontal (pan) speed 00H-FFH
6     data 2: vertical (tilt) speed 00H-FFH
7     high nibble: data 3, zoom speed 0H-FH; low nibble: address, high 4 bits
8     checksum = (byte1 + ... + byte7) mod 256
====  =============================================================

Instruction codes with bits 7-6 = 01 are focus/iris (FI), 80H-8FH presets, cruise and scan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PTZ_FIRST_BYTE = 0xA5
PTZ_VERSION = 0
PTZ_COMMAND_LENGTH = 8
MAX_AXIS_SPEED = 0xFF
MAX_ZOOM_SPEED = 0x0F
MAX_ADDRESS = 0xFFF  # 12 bits: 8 in byte 3, 4 in the low nibble of byte 7
DEFAULT_ADDRESS = 1  # what wvp-GB28181-pro and most platforms send; devices ignore it

BIT_RIGHT = 0x01
BIT_LEFT = 0x02
BIT_DOWN = 0x04
BIT_UP = 0x08
BIT_ZOOM_IN = 0x10
BIT_ZOOM_OUT = 0x20
CLASS_MASK = 0xC0  # bits 7-6 select the instruction class; 00 is a PTZ move

PRESET_SET = 0x81
PRESET_GOTO = 0x82
PRESET_DELETE = 0x83
MAX_PRESET = 0xFF

_NIBBLE = 0x0F
_BYTE = 0xFF
_HEX_LENGTH = PTZ_COMMAND_LENGTH * 2


@dataclass(frozen=True)
class PtzCommand:
    """A pan/tilt/zoom move: directions in {-1, 0, +1}, speeds 0-255 (zoom 0-15)."""

    pan: int
    tilt: int
    zoom: int
    pan_speed: int
    tilt_speed: int
    zoom_speed: int
    address: int = DEFAULT_ADDRESS


@dataclass(frozen=True)
class PtzFrame:
    """Any well-formed 8-byte front-end command, split into its fields."""

    instruction: int
    data1: int
    data2: int
    data3: int
    address: int


PTZ_STOP = PtzCommand(0, 0, 0, 0, 0, 0)


def _check_nibble(version: int) -> int:
    return ((PTZ_FIRST_BYTE >> 4) + (PTZ_FIRST_BYTE & _NIBBLE) + version) & _NIBBLE


def encode_frame(frame: PtzFrame) -> bytes:
    """Encode any front-end command (instruction + data bytes) with its check bytes."""
    if not 0 <= frame.instruction <= _BYTE:
        raise ValueError(f"instruction {frame.instruction} out of range 0-255")
    for name, value, limit in (
        ("data1", frame.data1, _BYTE),
        ("data2", frame.data2, _BYTE),
        ("data3", frame.data3, _NIBBLE),
        ("address", frame.address, MAX_ADDRESS),
    ):
        if not 0 <= value <= limit:
            raise ValueError(f"{name} {value} out of range 0-{limit}")
    body = bytes(
        (
            PTZ_FIRST_BYTE,
            (PTZ_VERSION << 4) | _check_nibble(PTZ_VERSION),
            frame.address & _BYTE,
            frame.instruction,
            frame.data1,
            frame.data2,
            (frame.data3 << 4) | (frame.address >> 8),
        )
    )
    return body + bytes((sum(body) & _BYTE,))


def _direction_bits(value: int, positive: int, negative: int, axis: str) -> int:
    if value not in (-1, 0, 1):
        raise ValueError(f"{axis} direction must be -1, 0 or +1, not {value}")
    return positive if value > 0 else negative if value < 0 else 0


def encode_ptz(cmd: PtzCommand) -> bytes:
    """Encode a PTZ move as the 8 command bytes; ValueError on out-of-range fields."""
    instruction = (
        _direction_bits(cmd.pan, BIT_RIGHT, BIT_LEFT, "pan")
        | _direction_bits(cmd.tilt, BIT_UP, BIT_DOWN, "tilt")
        | _direction_bits(cmd.zoom, BIT_ZOOM_IN, BIT_ZOOM_OUT, "zoom")
    )
    if not 0 <= cmd.pan_speed <= MAX_AXIS_SPEED:
        raise ValueError(f"pan_speed {cmd.pan_speed} out of range 0-{MAX_AXIS_SPEED}")
    if not 0 <= cmd.tilt_speed <= MAX_AXIS_SPEED:
        raise ValueError(f"tilt_speed {cmd.tilt_speed} out of range 0-{MAX_AXIS_SPEED}")
    if not 0 <= cmd.zoom_speed <= MAX_ZOOM_SPEED:
        raise ValueError(f"zoom_speed {cmd.zoom_speed} out of range 0-{MAX_ZOOM_SPEED}")
    return encode_frame(
        PtzFrame(instruction, cmd.pan_speed, cmd.tilt_speed, cmd.zoom_speed, cmd.address)
    )


def ptz_hex(cmd: PtzCommand) -> str:
    """The 16 upper-case hex characters that go into <PTZCmd>."""
    return encode_ptz(cmd).hex().upper()


def preset_hex(operation: int, preset: int, address: int = DEFAULT_ADDRESS) -> str:
    """PTZCmd for a preset set/goto/delete (A.3.4): byte 6 carries the preset number."""
    if operation not in (PRESET_SET, PRESET_GOTO, PRESET_DELETE):
        raise ValueError(f"not a preset operation: {operation:#x}")
    if not 1 <= preset <= MAX_PRESET:
        raise ValueError(f"preset {preset} out of range 1-{MAX_PRESET}")
    return encode_frame(PtzFrame(operation, 0, preset, 0, address)).hex().upper()


def parse_frame(value: str | bytes) -> PtzFrame:
    """Check the framing bytes of any front-end command and split it into fields."""
    if isinstance(value, str):
        text = value.strip()
        if len(text) != _HEX_LENGTH:
            raise ValueError(f"PTZCmd must be {_HEX_LENGTH} hex characters, got {len(text)}")
        try:
            raw = bytes.fromhex(text)
        except ValueError as err:
            raise ValueError(f"PTZCmd is not hexadecimal: {text!r}") from err
    else:
        raw = bytes(value)
    if len(raw) != PTZ_COMMAND_LENGTH:
        raise ValueError(f"PTZ command must be {PTZ_COMMAND_LENGTH} bytes, got {len(raw)}")
    if raw[0] != PTZ_FIRST_BYTE:
        raise ValueError(f"PTZ command must start with A5, got {raw[0]:02X}")
    if raw[1] & _NIBBLE != _check_nibble(raw[1] >> 4):
        raise ValueError(f"PTZ command byte 2 check nibble is wrong: {raw[1]:02X}")
    if sum(raw[:7]) & _BYTE != raw[7]:
        raise ValueError(f"PTZ command checksum is wrong: {raw[7]:02X}")
    return PtzFrame(raw[3], raw[4], raw[5], raw[6] >> 4, raw[2] | ((raw[6] & _NIBBLE) << 8))


def _axis(bits: int, positive: int, negative: int, axis: str) -> int:
    if bits & positive and bits & negative:
        raise ValueError(f"PTZ command asks for both {axis} directions at once")
    return 1 if bits & positive else -1 if bits & negative else 0


def parse_ptz(value: str | bytes) -> PtzCommand:
    """Parse a PTZCmd (hex text or 8 bytes) that is a PTZ move; ValueError otherwise."""
    frame = parse_frame(value)
    if frame.instruction & CLASS_MASK:
        raise ValueError(f"not a PTZ move: instruction {frame.instruction:02X}")
    bits = frame.instruction
    return PtzCommand(
        pan=_axis(bits, BIT_RIGHT, BIT_LEFT, "pan"),
        tilt=_axis(bits, BIT_UP, BIT_DOWN, "tilt"),
        zoom=_axis(bits, BIT_ZOOM_IN, BIT_ZOOM_OUT, "zoom"),
        pan_speed=frame.data1,
        tilt_speed=frame.data2,
        zoom_speed=frame.data3,
        address=frame.address,
    )


def _split_velocity(value: float, max_speed: int, axis: str) -> tuple[int, int]:
    if math.isnan(value):
        raise ValueError(f"{axis} velocity is NaN")
    clamped = max(-1.0, min(1.0, value))
    speed = round(abs(clamped) * max_speed)
    if speed == 0:
        return 0, 0
    return (1 if clamped > 0 else -1), speed


def ptz_from_velocity(pan: float, tilt: float, zoom: float, max_speed: int = 255) -> PtzCommand:
    """Map REST velocities in [-1, 1] (clamped) to a PTZ move; speeds scale to max_speed/15."""
    if not 1 <= max_speed <= MAX_AXIS_SPEED:
        raise ValueError(f"max_speed {max_speed} out of range 1-{MAX_AXIS_SPEED}")
    pan_dir, pan_speed = _split_velocity(pan, max_speed, "pan")
    tilt_dir, tilt_speed = _split_velocity(tilt, max_speed, "tilt")
    zoom_dir, zoom_speed = _split_velocity(zoom, MAX_ZOOM_SPEED, "zoom")
    return PtzCommand(pan_dir, tilt_dir, zoom_dir, pan_speed, tilt_speed, zoom_speed)


def velocity_from_ptz(command: PtzCommand) -> tuple[float, float, float]:
    """The inverse of :func:`ptz_from_velocity`: (pan, tilt, zoom) in [-1, 1]."""
    return (
        command.pan * command.pan_speed / MAX_AXIS_SPEED,
        command.tilt * command.tilt_speed / MAX_AXIS_SPEED,
        command.zoom * command.zoom_speed / MAX_ZOOM_SPEED,
    )
