"""Bad input on the WebSocket: each kind gets its documented error or close code, and the
hub keeps serving everyone else (ARCHITECTURE.md, "Cross-cutting rules")."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import jwt
import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from protocols.client import COMMAND_METHODS, DisconnectCode, ErrorCode
from protocols.envelope import Envelope
from tests.conftest import RunningHub
from tests.support.clients import Recorder, next_item, sdk_client
from tests.support.hubs import TEST_SECRET, token
from tests.support.rawws import ConnectionClosed, RawClient, eventually

USER = ("s01-dispatcher", "d01.s01", ["dispatcher"])
SENTINEL_ID = 2**32 - 1


def claims_token(secret: str = TEST_SECRET, **claims: Any) -> str:
    """A token with exactly these claims (mint_token refuses the bad ones)."""
    now = int(time.time())
    base: dict[str, Any] = {"sub": "u1", "org": "d01", "roles": ["dispatcher"], "exp": now + 600}
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, secret, algorithm="HS256")


async def assert_hub_serves(hub: RunningHub) -> None:
    """A fresh SDK client connects, subscribes and receives a publication."""
    recorder = Recorder()
    client = sdk_client(hub.ws_url, token(*USER), recorder)
    sub = client.new_subscription("org:d01.s01", events=recorder)
    await client.connect()
    try:
        await sub.subscribe()
        await next_item(recorder.subscribed)
        envelope = Envelope(
            type="alert.raised", source="test/bad-input", org="d01.s01", data={"title": "ok"}
        )
        await hub.hub.publisher.publish_now(envelope)
        pub = await next_item(recorder.publications)
        assert pub.pub.data["id"] == envelope.id
    finally:
        await client.disconnect()


Send = Callable[[RawClient], Awaitable[None]]


def text(frame: str) -> Send:
    async def send(client: RawClient) -> None:
        await client.send_text(frame)

    return send


def after_connect(frame: str) -> Send:
    async def send(client: RawClient) -> None:
        await client.result("connect", {"token": token(*USER)})
        await client.send_text(frame)

    return send


async def send_binary(client: RawClient) -> None:
    await client.send_bytes(b'{"id":1,"connect":{}}')


async def send_oversize(client: RawClient) -> None:
    await client.send_text('{"id":1,"ping":{},"pad":"' + "x" * 70_000 + '"}')


def connect_with(tok: str, **extra: Any) -> Send:
    async def send(client: RawClient) -> None:
        await client.send_text(orjson.dumps({"id": 1, "connect": {"token": tok, **extra}}))

    return send


CLOSING_CASES: dict[str, tuple[Send, int]] = {
    "malformed-json": (text('{"id":1,"connect":'), DisconnectCode.BAD_REQUEST),
    "lone-surrogate": (text('{"id":1,"connect":{"token":"\\ud800"}}'), DisconnectCode.BAD_REQUEST),
    "unknown-command": (text('{"id":1,"frobnicate":{}}'), DisconnectCode.BAD_REQUEST),
    "two-methods": (text('{"id":1,"ping":{},"send":{}}'), DisconnectCode.BAD_REQUEST),
    "array": (text("[1,2,3]"), DisconnectCode.BAD_REQUEST),
    "string": (text('"connect"'), DisconnectCode.BAD_REQUEST),
    "number": (text("42"), DisconnectCode.BAD_REQUEST),
    "null": (text("null"), DisconnectCode.BAD_REQUEST),
    "params-not-object": (text('{"id":1,"connect":[]}'), DisconnectCode.BAD_REQUEST),
    "negative-id": (text('{"id":-1,"connect":{}}'), DisconnectCode.BAD_REQUEST),
    "empty-frame": (text("\n \n"), DisconnectCode.BAD_REQUEST),
    "command-before-connect": (
        text('{"id":1,"subscribe":{"channel":"org:d01"}}'),
        DisconnectCode.BAD_REQUEST,
    ),
    "command-without-id": (
        after_connect('{"subscribe":{"channel":"org:d01"}}'),
        DisconnectCode.BAD_REQUEST,
    ),
    "second-connect": (
        after_connect(orjson.dumps({"id": 9, "connect": {"token": token(*USER)}}).decode()),
        DisconnectCode.BAD_REQUEST,
    ),
    "too-many-commands": (
        after_connect("\n".join(f'{{"id":{i},"ping":{{}}}}' for i in range(1, 102))),
        DisconnectCode.BAD_REQUEST,
    ),
    "binary-frame": (send_binary, DisconnectCode.BAD_REQUEST),
    "oversize-frame": (send_oversize, DisconnectCode.MESSAGE_TOO_BIG),
    "garbage-token": (connect_with("not.a.jwt"), DisconnectCode.INVALID_TOKEN),
    "missing-token": (text('{"id":1,"connect":{}}'), DisconnectCode.INVALID_TOKEN),
    "wrong-secret": (connect_with(claims_token(secret="x" * 40)), DisconnectCode.INVALID_TOKEN),
    "unknown-role": (
        connect_with(claims_token(roles=["superuser"])),
        DisconnectCode.INVALID_TOKEN,
    ),
    "bad-org": (connect_with(claims_token(org="D01..x")), DisconnectCode.INVALID_TOKEN),
    "org-not-string": (connect_with(claims_token(org=["d01"])), DisconnectCode.INVALID_TOKEN),
    "no-sub": (connect_with(claims_token(sub=None)), DisconnectCode.INVALID_TOKEN),
    "alg-none": (
        connect_with(
            jwt.encode(
                {"sub": "admin", "org": "d01", "roles": ["admin"], "exp": 2**31},
                key="",
                algorithm="none",
            )
        ),
        DisconnectCode.INVALID_TOKEN,
    ),
}


@pytest.mark.parametrize("case", list(CLOSING_CASES))
async def test_bad_input_closes_with_its_code_and_hub_keeps_serving(
    sqlite_hub: RunningHub, case: str
) -> None:
    send, code = CLOSING_CASES[case]
    bystander = await RawClient.open(sqlite_hub.ws_url)
    await bystander.result("connect", {"token": token(*USER)})
    await bystander.result("subscribe", {"channel": "org:d01.s01"})
    client = await RawClient.open(sqlite_hub.ws_url)
    try:
        await send(client)
        assert await client.closed() == code
        await assert_hub_serves(sqlite_hub)
        assert await bystander.result("ping", {}) == {}
        assert (await bystander.publication("org:d01.s01"))["pub"]["offset"] == 1
    finally:
        await client.close()
        await bystander.close()


async def test_expired_token_gets_token_expired_reply_not_a_close(sqlite_hub: RunningHub) -> None:
    client = await RawClient.open(sqlite_hub.ws_url)
    try:
        expired = claims_token(exp=int(time.time()) - 30)
        assert await client.error("connect", {"token": expired}) == ErrorCode.TOKEN_EXPIRED
        assert not client.is_closed
        # The SDK then fetches a fresh token and connects again.
        assert (await client.result("connect", {"token": token(*USER)}))["client"]
        await assert_hub_serves(sqlite_hub)
    finally:
        await client.close()


@pytest.mark.parametrize(
    "subs",
    ["x", [1], 7, {"user:s01-dispatcher": "x"}, {"user:s01-dispatcher": {"offset": -1}}],
    ids=["string", "list", "number", "entry-not-object", "negative-offset"],
)
async def test_connect_with_malformed_subs_is_a_client_error_not_a_server_error(
    sqlite_hub: RunningHub, subs: Any
) -> None:
    """``subs`` is client input: a bad value is a bad request (an error reply or close
    3501), never an internal error (3004) - and never a half-made connection."""
    client = await RawClient.open(sqlite_hub.ws_url)
    try:
        await client.send({"id": 1, "connect": {"token": token(*USER), "subs": subs}})
        try:
            reply = await client.reply(1)
        except ConnectionClosed as closed:
            assert closed.code == DisconnectCode.BAD_REQUEST
        else:
            if "error" in reply:
                assert reply["error"]["code"] == ErrorCode.BAD_REQUEST
                # A failed connect leaves the connection unauthenticated: the next
                # command is a protocol violation, not a served subscription.
                await client.send({"id": 2, "subscribe": {"channel": "org:d01.s01"}})
                try:
                    served = await client.reply(2)
                except ConnectionClosed as closed:
                    assert closed.code == DisconnectCode.BAD_REQUEST
                else:
                    raise AssertionError(f"served after a failed connect: {served}")
            else:
                assert "user:s01-dispatcher" in reply["connect"]["subs"]
        await assert_hub_serves(sqlite_hub)
    finally:
        await client.close()


@pytest.mark.parametrize("method", sorted(COMMAND_METHODS - {"connect"}))
async def test_every_protocol_method_is_answered_not_a_server_error(
    sqlite_hub: RunningHub, method: str
) -> None:
    """Each method the decoder accepts, sent with empty params after connect, gets a
    reply or an error reply (``send`` gets none): a method the hub does not implement
    is "method not found" (104), not an internal error (3004)."""
    client, _ = await RawClient.connected(sqlite_hub.ws_url, token(*USER))
    try:
        await client.send({"id": 5, method: {}})
        sentinel = await client.call("ping", {})
        assert sentinel == {"id": sentinel["id"], "ping": {}}
        replies = [m for m in client.received if m.get("id") == 5]
        if method == "send":
            assert replies == []
        else:
            assert len(replies) == 1
            error = replies[0].get("error")
            assert error is None or error["code"] in {
                ErrorCode.UNKNOWN_CHANNEL,
                ErrorCode.METHOD_NOT_FOUND,
                ErrorCode.BAD_REQUEST,
                ErrorCode.TOKEN_EXPIRED,
            }, replies
    except ConnectionClosed as closed:
        # a close is acceptable only as a client error (refresh without a token)
        assert closed.code != DisconnectCode.SERVER_ERROR, method
        assert method == "refresh" and closed.code == DisconnectCode.INVALID_TOKEN
    finally:
        await client.close()


@pytest.mark.parametrize(
    "offset",
    ["\u00b2", "\u0661\u0662", "9" * 5000, "1e3"],
    ids=["superscript-two", "arabic-indic-12", "5000-digits", "exponent"],
)
@pytest.mark.parametrize("where", ["subscribe", "history", "connect"])
async def test_string_offsets_that_are_not_plain_digits_are_bad_requests(
    sqlite_hub: RunningHub, offset: str, where: str
) -> None:
    """Clients may send a uint64 offset as a decimal string. Anything else - superscript
    or other Unicode digits, more digits than int() accepts - is a bad request (107 or
    close 3501), not an internal error."""
    position = {"offset": offset, "epoch": "e"}
    client = await RawClient.open(sqlite_hub.ws_url)
    try:
        if where == "connect":
            subs = {"user:s01-dispatcher": {"recover": True, **position}}
            await client.send({"id": 1, "connect": {"token": token(*USER), "subs": subs}})
            cmd_id = 1
        else:
            await client.result("connect", {"token": token(*USER)})
            params: dict[str, Any] = {"channel": "org:d01.s01"}
            if where == "subscribe":
                params.update(recover=True, **position)
            else:
                params.update(limit=10, since=position)
            (cmd_id,) = await client.send({where: params})
        try:
            reply = await client.reply(cmd_id)
        except ConnectionClosed as closed:
            assert closed.code == DisconnectCode.BAD_REQUEST
        else:
            lenient = offset == "\u0661\u0662"  # int() reads it as 12: taking it is fine
            if "error" in reply:
                codes = {ErrorCode.BAD_REQUEST}
                if lenient:
                    codes.add(ErrorCode.UNRECOVERABLE_POSITION)  # 12 in epoch "e": no such
                assert reply["error"]["code"] in codes, reply
            else:
                assert lenient, reply
        await assert_hub_serves(sqlite_hub)
    finally:
        await client.close()


# -- random frames ------------------------------------------------------------------------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
CHANNELS = st.sampled_from(
    [
        "org:d01",
        "org:d01.s01",
        "org:d01.s02",
        "org:d01.s01.c01",
        "user:s01-dispatcher",
        "user:admin",
        "case:1",
        "org:",
        "org:D01",
        "x",
    ]
) | st.text(max_size=20)
POSITIONS = st.fixed_dictionaries(
    {},
    optional={
        "offset": st.integers(min_value=-5, max_value=2**64 - 1) | st.text(max_size=22) | JSON,
        "epoch": st.text(max_size=70) | JSON,
        "recover": st.booleans(),
    },
)
PARAMS = st.fixed_dictionaries(
    {},
    optional={
        "channel": CHANNELS,
        "token": st.sampled_from([token(*USER), token("admin", "d01", ["admin"]), "x"]) | JSON,
        "subs": st.dictionaries(CHANNELS, POSITIONS | JSON, max_size=2) | JSON,
        "recover": st.booleans() | JSON,
        "offset": st.integers(min_value=-5, max_value=2**64 - 1) | JSON,
        "epoch": st.text(max_size=70) | JSON,
        "since": POSITIONS | JSON,
        "limit": st.integers(min_value=-(2**63), max_value=2**63) | JSON,
        "reverse": JSON,
        "flag": st.integers(min_value=-5, max_value=2**40) | JSON,
        "data": st.fixed_dictionaries({"text": st.text(max_size=30)}) | JSON,
        "method": st.sampled_from(["no.such", ""]) | JSON,
    },
)
IDS = st.integers(min_value=0, max_value=1000) | st.sampled_from([2**32, -1, 1.5, "1", True])
COMMANDS = st.builds(
    lambda cmd_id, method, params: {"id": cmd_id, method: params},
    IDS,
    st.sampled_from(sorted(COMMAND_METHODS)) | st.text(max_size=8),
    PARAMS | JSON,
) | st.builds(
    # a connect that gets past the token check, so the rest of its params are exercised
    lambda cmd_id, params: {"id": cmd_id, "connect": {**params, "token": token(*USER)}},
    IDS,
    PARAMS,
)
LINES = (
    COMMANDS.map(lambda c: orjson.dumps(c).decode())
    | JSON.map(lambda v: orjson.dumps(v).decode())
    | st.text(max_size=40)
)
FRAMES = st.lists(LINES, min_size=1, max_size=3).map("\n".join).map(lambda t: ("text", t)) | (
    st.binary(max_size=40).map(lambda b: ("binary", b))
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    # no shrinking: each example is a live connection, and shrinking one can take a minute
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(
    opening=st.sampled_from(["none", "connect", "fuzzed-connect"]),
    connect_params=PARAMS,
    frames=st.lists(FRAMES, min_size=1, max_size=3),
)
async def test_random_frames_never_cause_a_server_error(
    sqlite_hub: RunningHub,
    opening: str,
    connect_params: dict[str, Any],
    frames: list[tuple[str, Any]],
) -> None:
    client = await RawClient.open(sqlite_hub.ws_url)
    try:
        if opening == "connect":
            await client.result("connect", {"token": token(*USER)})
        elif opening == "fuzzed-connect":
            # a valid token, so the connect's other params get exercised
            await client.send({"id": 1, "connect": {**connect_params, "token": token(*USER)}})
        for kind, frame in frames:
            if client.is_closed:
                break
            try:
                if kind == "binary":
                    await client.send_bytes(frame)
                else:
                    await client.send_text(frame)
            except ConnectionError:
                break
        if not client.is_closed:
            # Everything sent before it has been answered once the sentinel is.
            try:
                await client.send_text(orjson.dumps({"id": SENTINEL_ID, "ping": {}}))
                await client.reply(SENTINEL_ID)
            except (ConnectionClosed, ConnectionError):
                pass
        errors = [m["error"] for m in client.received if "error" in m]
        assert all(e["code"] != ErrorCode.INTERNAL for e in errors), errors
        if client.is_closed:
            assert await client.closed() != DisconnectCode.SERVER_ERROR
    finally:
        await client.close()
    # A fresh client still connects and receives a publication (raw: cheap per example).
    fresh, _ = await RawClient.connected(sqlite_hub.ws_url, token(*USER))
    try:
        await fresh.result("subscribe", {"channel": "org:d01.s01.c03"})
        envelope = Envelope(type="alert.raised", source="t", org="d01.s01.c03", data={"title": "t"})
        await sqlite_hub.hub.publisher.publish_now(envelope)
        assert (await fresh.publication())["pub"]["data"]["id"] == envelope.id
    finally:
        await fresh.close()


async def test_closed_connections_leave_nothing_behind(sqlite_hub: RunningHub) -> None:
    """Clients closed by the hub, by themselves, subscribed or not: the node forgets
    every connection and every channel."""
    closers: list[str | None] = [
        '{"id":1,"connect":{"token":"x"}}',
        '{"id":1,"subscribe":{"channel":"org:d01"}}',
        "\x00",
        None,
    ]
    for frame in closers:
        client = await RawClient.open(sqlite_hub.ws_url)
        if frame is None:
            await client.result("connect", {"token": token(*USER)})
            await client.result("subscribe", {"channel": "org:d01.s01"})
        else:
            await client.send_text(frame)
            assert await client.closed() == DisconnectCode.BAD_REQUEST or frame.startswith(
                '{"id":1,"connect"'
            )
        await client.close()
    await assert_hub_serves(sqlite_hub)
    node = sqlite_hub.hub.gateway.node
    await eventually(
        lambda: not node.connections and not node.channels, "the node forgot every client"
    )
    assert sqlite_hub.hub.gateway.protocol_errors >= 1
