"""protocols/client.py and protocols/websocket.py: frame decoding never fails with anything
but ProtocolError, valid commands come out as Commands, encoders produce valid JSON and
valid WebSocket frames."""

from __future__ import annotations

import struct
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.client import (
    COMMAND_METHODS,
    DISCONNECT_REASONS,
    ERROR_MESSAGES,
    MAX_COMMANDS_PER_FRAME,
    Command,
    DisconnectCode,
    ErrorCode,
    ProtocolError,
    decode_command,
    decode_frame,
    encode_error,
    encode_publication,
    encode_publication_push,
    encode_push,
    encode_reply,
)
from protocols.websocket import OP_CLOSE, OP_TEXT, close_frame, text_frame

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20,
)
IDS = st.integers(min_value=-5, max_value=2**33) | JSON
METHODS = st.sampled_from(sorted(COMMAND_METHODS)) | st.text(max_size=10)
COMMAND_OBJECTS = st.builds(
    lambda cmd_id, method, params, extra: {"id": cmd_id, method: params, **extra},
    IDS,
    METHODS,
    st.dictionaries(st.text(max_size=8), JSON, max_size=4) | JSON,
    st.dictionaries(st.text(max_size=8), JSON, max_size=1),
) | st.dictionaries(st.sampled_from(["id", *sorted(COMMAND_METHODS)]), JSON, max_size=3)
LINES = COMMAND_OBJECTS.map(orjson.dumps) | JSON.map(orjson.dumps) | st.binary(max_size=60)


def check_decodes_or_rejects(frame: str | bytes) -> None:
    """The property: ProtocolError, or commands that satisfy the protocol's invariants."""
    try:
        commands = decode_frame(frame)
    except ProtocolError:
        return
    assert 1 <= len(commands) <= MAX_COMMANDS_PER_FRAME
    for cmd in commands:
        assert isinstance(cmd, Command)
        assert isinstance(cmd.id, int) and not isinstance(cmd.id, bool)
        assert 0 <= cmd.id < 2**32
        assert isinstance(cmd.params, dict)
        if cmd.method == "":
            assert cmd.params == {}
        else:
            assert cmd.method in COMMAND_METHODS
            assert cmd.id > 0 or cmd.method == "send"


@given(st.binary(max_size=300))
def test_arbitrary_bytes_decode_or_raise_protocol_error(frame: bytes) -> None:
    check_decodes_or_rejects(frame)


@given(st.text(max_size=300))
def test_arbitrary_text_decodes_or_raises_protocol_error(frame: str) -> None:
    check_decodes_or_rejects(frame)


@given(st.lists(LINES, min_size=0, max_size=6), st.sampled_from([b"\n", b"\r\n", b"\n\n "]))
def test_arbitrary_json_structures_decode_or_raise_protocol_error(
    lines: list[bytes], separator: bytes
) -> None:
    frame = separator.join(lines)
    check_decodes_or_rejects(frame)
    check_decodes_or_rejects(frame.decode("utf-8", errors="replace"))


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=2**32 - 1),
            st.sampled_from(sorted(COMMAND_METHODS)),
            st.dictionaries(
                st.text(max_size=8),
                st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8),
                max_size=3,
            ),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_well_formed_commands_decode_in_order(commands: list[tuple[int, str, Any]]) -> None:
    frame = b"\n".join(orjson.dumps({"id": i, m: p}) for i, m, p in commands)
    decoded = decode_frame(frame)
    assert [(c.id, c.method, c.params) for c in decoded] == commands


def test_pong_is_an_empty_object() -> None:
    assert decode_frame("{}") == [Command(id=0, method="", params={})]


def test_send_may_omit_the_id_other_commands_may_not() -> None:
    assert decode_command(b'{"send":{"data":1}}') == Command(0, "send", {"data": 1})
    with pytest.raises(ProtocolError):
        decode_command(b'{"ping":{}}')


def test_null_params_are_empty_params() -> None:
    assert decode_command(b'{"id":3,"ping":null}') == Command(3, "ping", {})


@pytest.mark.parametrize(
    "line",
    [
        b"[]",
        b"1",
        b'"x"',
        b"null",
        b"{",
        b'{"id":1}{"id":2}',
        b'{"id":1,"connect":{},"ping":{}}',
        b'{"id":1,"connect":[]}',
        b'{"id":1,"connect":"x"}',
        b'{"id":1,"nope":{}}',
        b'{"id":-1,"ping":{}}',
        b'{"id":1.0,"ping":{}}',
        b'{"id":"1","ping":{}}',
        b'{"id":true,"ping":{}}',
        b'{"id":4294967296,"ping":{}}',
        b'{"id":1,"ping":{}}\xff',
    ],
)
def test_malformed_commands_are_protocol_errors(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_frame(line)


def test_largest_command_id_is_the_largest_uint32() -> None:
    """Centrifugo's command id is a uint32: 2**32 - 1 is the largest valid one."""
    assert decode_command(b'{"id":4294967295,"ping":{}}').id == 2**32 - 1


def test_empty_frames_are_protocol_errors() -> None:
    for frame in ["", "\n", " \n \r\n"]:
        with pytest.raises(ProtocolError):
            decode_frame(frame)


def test_at_most_max_commands_per_frame() -> None:
    line = b'{"id":1,"ping":{}}'
    assert len(decode_frame(b"\n".join([line] * MAX_COMMANDS_PER_FRAME))) == MAX_COMMANDS_PER_FRAME
    with pytest.raises(ProtocolError):
        decode_frame(b"\n".join([line] * (MAX_COMMANDS_PER_FRAME + 1)))


# -- encoders --------------------------------------------------------------------------------


@given(st.text(min_size=1, max_size=40), JSON, st.integers(min_value=0, max_value=2**53))
def test_publication_push_splices_data_as_json(channel: str, data: Any, offset: int) -> None:
    raw = orjson.dumps(data)
    push = orjson.loads(encode_publication_push(channel, raw, offset))
    assert push == {"push": {"channel": channel, "pub": {"data": data, "offset": offset}}}
    assert orjson.loads(encode_publication(raw, offset)) == {"data": data, "offset": offset}


def test_replies_and_errors() -> None:
    assert orjson.loads(encode_reply(5, "ping", {})) == {"id": 5, "ping": {}}
    for code in ErrorCode:
        error = orjson.loads(encode_error(9, code))["error"]
        assert error["code"] == int(code) and error["message"] == ERROR_MESSAGES[code]
        temporary = code in (
            ErrorCode.INTERNAL,
            ErrorCode.NOT_AVAILABLE,
            ErrorCode.TOO_MANY_REQUESTS,
        )
        assert error.get("temporary", False) is temporary
    assert orjson.loads(encode_push("c", "leave", {"info": {}})) == {
        "push": {"channel": "c", "leave": {"info": {}}}
    }


def test_disconnect_codes_follow_the_reconnect_ranges() -> None:
    """3000-3499 reconnect, 3500-3999 do not; every code has a reason."""
    reconnect = {c for c in DisconnectCode if 3000 <= c < 3500}
    assert {
        DisconnectCode.SHUTDOWN,
        DisconnectCode.SLOW,
        DisconnectCode.NO_PONG,
        DisconnectCode.EXPIRED,
        DisconnectCode.INSUFFICIENT_STATE,
    } <= reconnect
    assert DisconnectCode.BAD_REQUEST >= 3500 and DisconnectCode.INVALID_TOKEN >= 3500
    assert set(DISCONNECT_REASONS) == set(DisconnectCode)


# -- WebSocket framing -----------------------------------------------------------------------


def parse_frame(frame: bytes) -> tuple[int, bytes]:
    first, second = frame[0], frame[1]
    assert first & 0x80, "FIN set"
    assert not second & 0x80, "server frames are not masked"
    length, pos = second & 0x7F, 2
    if length == 126:
        (length,) = struct.unpack_from("!H", frame, 2)
        pos = 4
    elif length == 127:
        (length,) = struct.unpack_from("!Q", frame, 2)
        pos = 10
    assert len(frame) == pos + length
    return first & 0x0F, frame[pos:]


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_text_frame_lengths_at_the_encoding_boundaries(size: int) -> None:
    payload = b"x" * size
    assert parse_frame(text_frame(payload)) == (OP_TEXT, payload)


def test_close_frame_carries_code_and_bounded_reason() -> None:
    opcode, body = parse_frame(close_frame(3008, "slow"))
    assert opcode == OP_CLOSE and body == struct.pack("!H", 3008) + b"slow"
    opcode, body = parse_frame(close_frame(3001, "x" * 500))
    assert len(body) == 2 + 123  # a control frame's payload is at most 125 bytes
