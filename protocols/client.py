"""Centrifugo bidirectional client protocol, JSON encoding: commands in, replies out.

A WebSocket text frame carries one or more JSON objects separated by newlines. Field
names follow centrifugal/protocol ``definitions/client.proto``. Pure code: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import orjson

MAX_COMMANDS_PER_FRAME = 100


class ErrorCode(IntEnum):
    """Error codes returned inside a reply (Centrifugo's client error codes)."""

    INTERNAL = 100
    UNAUTHORIZED = 101
    UNKNOWN_CHANNEL = 102
    PERMISSION_DENIED = 103
    METHOD_NOT_FOUND = 104
    ALREADY_SUBSCRIBED = 105
    LIMIT_EXCEEDED = 106
    BAD_REQUEST = 107
    NOT_AVAILABLE = 108
    TOKEN_EXPIRED = 109
    EXPIRED = 110
    TOO_MANY_REQUESTS = 111
    UNRECOVERABLE_POSITION = 112


ERROR_MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.INTERNAL: "internal server error",
    ErrorCode.UNAUTHORIZED: "unauthorized",
    ErrorCode.UNKNOWN_CHANNEL: "unknown channel",
    ErrorCode.PERMISSION_DENIED: "permission denied",
    ErrorCode.METHOD_NOT_FOUND: "method not found",
    ErrorCode.ALREADY_SUBSCRIBED: "already subscribed",
    ErrorCode.LIMIT_EXCEEDED: "limit exceeded",
    ErrorCode.BAD_REQUEST: "bad request",
    ErrorCode.NOT_AVAILABLE: "not available",
    ErrorCode.TOKEN_EXPIRED: "token expired",
    ErrorCode.EXPIRED: "expired",
    ErrorCode.TOO_MANY_REQUESTS: "too many requests",
    ErrorCode.UNRECOVERABLE_POSITION: "unrecoverable position",
}


class DisconnectCode(IntEnum):
    """WebSocket close codes. 3000–3499: the client reconnects; 3500–3999: it does not."""

    SHUTDOWN = 3001
    SERVER_ERROR = 3004
    EXPIRED = 3005
    SLOW = 3008
    WRITE_ERROR = 3009
    INSUFFICIENT_STATE = 3010
    FORCE_RECONNECT = 3011
    NO_PONG = 3012
    TOO_MANY_REQUESTS = 3013
    INVALID_TOKEN = 3500
    BAD_REQUEST = 3501
    STALE = 3502
    FORCE_NO_RECONNECT = 3503
    CONNECTION_LIMIT = 3504
    CHANNEL_LIMIT = 3505
    PERMISSION_DENIED = 3507
    MESSAGE_TOO_BIG = 1009


DISCONNECT_REASONS: dict[DisconnectCode, str] = {
    DisconnectCode.SHUTDOWN: "shutdown",
    DisconnectCode.SERVER_ERROR: "internal server error",
    DisconnectCode.EXPIRED: "connection expired",
    DisconnectCode.SLOW: "slow",
    DisconnectCode.WRITE_ERROR: "write error",
    DisconnectCode.INSUFFICIENT_STATE: "insufficient state",
    DisconnectCode.FORCE_RECONNECT: "force reconnect",
    DisconnectCode.NO_PONG: "no pong",
    DisconnectCode.TOO_MANY_REQUESTS: "too many requests",
    DisconnectCode.INVALID_TOKEN: "invalid token",
    DisconnectCode.BAD_REQUEST: "bad request",
    DisconnectCode.STALE: "stale",
    DisconnectCode.FORCE_NO_RECONNECT: "force disconnect",
    DisconnectCode.CONNECTION_LIMIT: "connection limit",
    DisconnectCode.CHANNEL_LIMIT: "channel limit",
    DisconnectCode.PERMISSION_DENIED: "permission denied",
    DisconnectCode.MESSAGE_TOO_BIG: "message too big",
}

COMMAND_METHODS = frozenset(
    {
        "connect",
        "subscribe",
        "unsubscribe",
        "publish",
        "presence",
        "presence_stats",
        "history",
        "ping",
        "send",
        "rpc",
        "refresh",
        "sub_refresh",
    }
)


class ProtocolError(ValueError):
    """A frame that does not follow the protocol: the connection is closed with BAD_REQUEST."""


@dataclass(frozen=True, slots=True)
class Command:
    """One decoded command. ``method`` is empty for a pong (an empty object ``{}``)."""

    id: int
    method: str
    params: dict[str, Any]


def decode_frame(frame: str | bytes) -> list[Command]:
    """Split a text frame into commands. Raises ProtocolError on anything malformed."""
    raw = frame.encode() if isinstance(frame, str) else frame
    commands: list[Command] = []
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        if len(commands) >= MAX_COMMANDS_PER_FRAME:
            raise ProtocolError(f"more than {MAX_COMMANDS_PER_FRAME} commands in one frame")
        commands.append(decode_command(line))
    if not commands:
        raise ProtocolError("empty frame")
    return commands


def decode_command(line: bytes) -> Command:
    """Decode one JSON command object."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as err:
        raise ProtocolError("command is not valid JSON") from err
    if not isinstance(obj, dict):
        raise ProtocolError("command must be a JSON object")
    cmd_id = obj.get("id", 0)
    if isinstance(cmd_id, bool) or not isinstance(cmd_id, int) or cmd_id < 0 or cmd_id >= 2**32:
        raise ProtocolError("command id must be a non-negative 32-bit integer")
    methods = [key for key in obj if key != "id"]
    if not methods:
        return Command(id=cmd_id, method="", params={})  # pong
    if len(methods) != 1:
        raise ProtocolError("a command carries exactly one method")
    method = methods[0]
    if method not in COMMAND_METHODS:
        raise ProtocolError(f"unknown command {method[:32]!r}")
    params = obj[method]
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ProtocolError(f"{method} parameters must be an object")
    if cmd_id == 0 and method != "send":
        raise ProtocolError(f"{method} command needs an id")
    return Command(id=cmd_id, method=method, params=params)


def encode_reply(cmd_id: int, method: str, result: dict[str, Any]) -> bytes:
    """A successful reply to a command."""
    return orjson.dumps({"id": cmd_id, method: result})


def encode_error(cmd_id: int, code: ErrorCode, message: str | None = None) -> bytes:
    """An error reply to a command."""
    error: dict[str, Any] = {"code": int(code), "message": message or ERROR_MESSAGES[code]}
    if code in (ErrorCode.INTERNAL, ErrorCode.NOT_AVAILABLE, ErrorCode.TOO_MANY_REQUESTS):
        error["temporary"] = True
    return orjson.dumps({"id": cmd_id, "error": error})


def encode_publication_push(channel: str, data: bytes, offset: int) -> bytes:
    """A publication push. ``data`` is already-encoded JSON: spliced in, never re-encoded."""
    head = orjson.dumps(channel)
    return b'{"push":{"channel":%s,"pub":{"data":%s,"offset":%d}}}' % (head, data, offset)


def encode_publication(data: bytes, offset: int) -> bytes:
    """A publication object for history and recovery lists, ``data`` spliced in."""
    return b'{"data":%s,"offset":%d}' % (data, offset)


def encode_push(channel: str, kind: str, body: dict[str, Any]) -> bytes:
    """Any other push (join, leave, unsubscribe, subscribe)."""
    return orjson.dumps({"push": {"channel": channel, kind: body}})


PING = b"{}"
