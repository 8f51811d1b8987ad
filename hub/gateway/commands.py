"""Command handlers of the client protocol: connect, subscribe with recovery, unsubscribe,
publish, history, presence, rpc, refresh."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import structlog

from hub.auth.channels import Action, ChannelError, allowed, parse_channel, user_channel
from hub.auth.tokens import Identity, TokenError, TokenVerifier
from hub.bus import BusUnavailable, HistoryResult, Publication, StreamPosition
from hub.events import EventValidationError, parse_event_data
from hub.gateway.connection import Connection, Subscription
from hub.gateway.node import Node
from hub.publisher import Publisher
from protocols.client import (
    Command,
    DisconnectCode,
    ErrorCode,
    encode_error,
    encode_publication,
    encode_publication_push,
)

log = structlog.get_logger(__name__)

HUB_VERSION = "grid-hub/0.1"
FLAG_REJECT_UNRECOVERED = 2

RpcHandler = Callable[[Identity, Any], Awaitable[Any]]
ChannelGuard = Callable[[Identity, str], Awaitable[bool]]
"""Who may read a per-object channel (``case:<id>`` …): the object's service decides from
the identity and the channel's key. Nobody publishes on such channels; the hub does."""


class CommandError(Exception):
    """An error reply to the current command."""

    def __init__(self, code: ErrorCode, message: str | None = None) -> None:
        super().__init__(message or code.name)
        self.code = code
        self.message = message


class Disconnect(Exception):
    """Close the connection with this code."""

    def __init__(self, code: DisconnectCode) -> None:
        super().__init__(code.name)
        self.code = code


@dataclass
class Reply:
    """A command result plus messages that must follow the reply (buffered publications
    of a subscription that was recovering)."""

    result: dict[str, Any]
    follow: list[bytes]


@dataclass
class RecoveryOutcome:
    """Result of positioning a subscription, optionally recovering missed publications."""

    position: StreamPosition
    recovered: bool
    publications: list[Publication]


class Dispatcher:
    """Executes commands of one protocol for every connection of a node."""

    def __init__(
        self,
        node: Node,
        verifier: TokenVerifier,
        publisher: Publisher,
        rpc_methods: dict[str, RpcHandler],
        channel_guards: dict[str, ChannelGuard],
    ) -> None:
        self.node = node
        self.verifier = verifier
        self.publisher = publisher
        self.rpc_methods = rpc_methods
        self.channel_guards = channel_guards
        self.settings = node.settings

    async def execute(self, conn: Connection, cmd: Command) -> None:
        """Run one command and queue its reply."""
        if cmd.method == "":
            conn.ping_outstanding = False
            return
        if not conn.authenticated and cmd.method != "connect":
            raise Disconnect(DisconnectCode.BAD_REQUEST)
        if conn.authenticated and cmd.method == "connect":
            raise Disconnect(DisconnectCode.BAD_REQUEST)
        handler = getattr(self, "_cmd_" + cmd.method, None)
        try:
            if handler is None:
                raise CommandError(ErrorCode.METHOD_NOT_FOUND, f"{cmd.method} is not supported")
            result = await handler(conn, cmd.params)
        except CommandError as err:
            conn.send(encode_error(cmd.id, err.code, err.message))
            return
        follow: list[bytes] = []
        if isinstance(result, Reply):
            follow = result.follow
            result = result.result
        if cmd.id and result is not None:
            conn.send(orjson.dumps({"id": cmd.id, cmd.method: result}))
        for message in follow:
            conn.send(message)

    # -- connect / refresh ----------------------------------------------------------------

    async def _cmd_connect(self, conn: Connection, params: dict[str, Any]) -> Reply:
        identity = self._verify(params.get("token"))
        channel = user_channel(identity.user)
        subs = params.get("subs") or {}
        if not isinstance(subs, dict):
            raise CommandError(ErrorCode.BAD_REQUEST, "subs must be an object")
        recover = _recovery_params(subs.get(channel))
        conn.identity = identity
        conn.authenticated = True
        conn.cancel_timers()
        self._arm_expiry(conn, identity)
        sub = Subscription(channel=channel, server_side=True)
        conn.subs[channel] = sub
        try:
            outcome = await self._position(conn, sub, recover)
        except BusUnavailable as err:
            conn.subs.pop(channel, None)
            self.node.remove_subscriber(conn, channel)
            raise Disconnect(DisconnectCode.SERVER_ERROR) from err
        reply: dict[str, Any] = {
            "client": conn.client_id,
            "version": HUB_VERSION,
            "ping": max(1, math.ceil(self.settings.ping_interval)),
            "pong": True,
            "expires": True,
            "ttl": max(1, identity.expires - int(time.time())),
            "subs": {channel: self._sub_result(outcome, recover is not None)},
        }
        self._presence_join(conn, channel)
        follow = self._finish_subscribe(conn, sub, outcome, reply["subs"][channel])
        return Reply(reply, follow)

    async def _cmd_refresh(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
        identity = self._verify(params.get("token"))
        assert conn.identity is not None
        if identity.user != conn.identity.user:
            raise Disconnect(DisconnectCode.INVALID_TOKEN)
        if identity.org != conn.identity.org or identity.roles != conn.identity.roles:
            # Permissions changed: the client resubscribes under the new ones.
            raise Disconnect(DisconnectCode.FORCE_RECONNECT)
        conn.identity = identity
        self._arm_expiry(conn, identity)
        return {
            "client": conn.client_id,
            "version": HUB_VERSION,
            "expires": True,
            "ttl": max(1, identity.expires - int(time.time())),
        }

    def _verify(self, token: Any) -> Identity:
        try:
            return self.verifier.verify(token)
        except TokenError as err:
            if err.expired:
                raise CommandError(ErrorCode.TOKEN_EXPIRED) from err
            raise Disconnect(DisconnectCode.INVALID_TOKEN) from err

    def _arm_expiry(self, conn: Connection, identity: Identity) -> None:
        if conn.expire_handle is not None:
            conn.expire_handle.cancel()
        delay = max(0.0, identity.expires - time.time()) + self.settings.pong_timeout
        conn.expire_handle = asyncio.get_running_loop().call_later(
            delay, conn.disconnect, DisconnectCode.EXPIRED
        )

    # -- subscriptions --------------------------------------------------------------------

    async def _cmd_subscribe(self, conn: Connection, params: dict[str, Any]) -> Reply:
        name = params.get("channel")
        await self._check(conn, name, Action.SUBSCRIBE)
        assert isinstance(name, str)
        if name in conn.subs:
            raise CommandError(ErrorCode.ALREADY_SUBSCRIBED)
        if len(conn.subs) >= self.settings.max_channels:
            raise CommandError(ErrorCode.LIMIT_EXCEEDED, "too many subscriptions")
        recover = _recovery_params(params) if params.get("recover") else None
        sub = Subscription(channel=name)
        conn.subs[name] = sub
        try:
            outcome = await self._position(conn, sub, recover)
        except BusUnavailable as err:
            self.node.remove_subscriber(conn, name)
            raise CommandError(ErrorCode.NOT_AVAILABLE) from err
        flag = params.get("flag", 0)
        if (
            recover is not None
            and not outcome.recovered
            and isinstance(flag, int)
            and flag & FLAG_REJECT_UNRECOVERED
        ):
            self.node.remove_subscriber(conn, name)
            raise CommandError(ErrorCode.UNRECOVERABLE_POSITION)
        reply = self._sub_result(outcome, recover is not None)
        self._presence_join(conn, name)
        return Reply(reply, self._finish_subscribe(conn, sub, outcome, reply))

    async def _position(
        self, conn: Connection, sub: Subscription, recover: StreamPosition | None
    ) -> RecoveryOutcome:
        """Start listening, then read the position (and missed publications). Live
        publications arriving meanwhile are buffered in ``sub``."""
        await self.node.add_subscriber(conn, sub.channel)
        limit = self.settings.history_limit
        if recover is None:
            result = await self.node.bus.history(sub.channel, since=None, limit=0)
            self.node.note_position(sub.channel, result.position)
            return RecoveryOutcome(result.position, False, [])
        result = await self.node.bus.history(sub.channel, since=recover, limit=limit + 1)
        self.node.note_position(sub.channel, result.position)
        return RecoveryOutcome(
            result.position, _is_complete(recover, result, limit), result.publications
        )

    def _finish_subscribe(
        self,
        conn: Connection,
        sub: Subscription,
        outcome: RecoveryOutcome,
        result: dict[str, Any],
    ) -> list[bytes]:
        """Put recovered publications in ``result``, switch the subscription to live
        delivery and return the buffered live publications that must follow the reply
        (deduplicated by offset against what was recovered)."""
        last = outcome.position.offset
        if outcome.recovered and outcome.publications:
            result["publications"] = [
                orjson.Fragment(encode_publication(p.data, p.offset)) for p in outcome.publications
            ]
            last = max(last, outcome.publications[-1].offset)
        buffered, sub.buffer = sub.buffer, []
        sub.buffering = False
        if conn.subs.get(sub.channel) is not sub:
            return []  # resynced or unsubscribed meanwhile
        epoch = outcome.position.epoch
        return [
            encode_publication_push(p.channel, p.data, p.offset)
            for p in buffered
            if p.offset > last and p.epoch == epoch
        ]

    def _sub_result(self, outcome: RecoveryOutcome, was_recovering: bool) -> dict[str, Any]:
        return {
            "recoverable": True,
            "positioned": True,
            "epoch": outcome.position.epoch,
            "offset": outcome.position.offset,
            "was_recovering": was_recovering,
            "recovered": outcome.recovered,
        }

    async def _cmd_unsubscribe(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("channel")
        if not isinstance(name, str) or name not in conn.subs or conn.subs[name].server_side:
            return {}
        self.node.remove_subscriber(conn, name)
        self._presence_leave(conn, name)
        return {}

    # -- publish / history / presence -----------------------------------------------------

    async def _cmd_publish(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("channel")
        channel = await self._check(conn, name, Action.PUBLISH)
        assert conn.identity is not None
        try:
            data = parse_event_data("message.posted", params.get("data"), external=False)
        except EventValidationError as err:
            raise CommandError(ErrorCode.BAD_REQUEST, str(err)) from err
        data.author = conn.identity.user  # type: ignore[attr-defined]
        envelope = data.envelope(source=f"hub/console/{conn.identity.user}", org=channel.key)
        try:
            await self.publisher.publish_now(envelope)
        except BusUnavailable as err:
            raise CommandError(ErrorCode.NOT_AVAILABLE) from err
        return {}

    async def _cmd_history(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("channel")
        await self._check(conn, name, Action.HISTORY)
        assert isinstance(name, str)
        limit = params.get("limit", 0)
        if not isinstance(limit, int) or isinstance(limit, bool):
            raise CommandError(ErrorCode.BAD_REQUEST, "limit must be an integer")
        cap = self.settings.history_limit
        limit = cap if limit < 0 else min(limit, cap)
        since = _recovery_params(params["since"]) if params.get("since") else None
        reverse = bool(params.get("reverse", False))
        try:
            result = await self.node.bus.history(name, since=since, limit=limit)
        except BusUnavailable as err:
            raise CommandError(ErrorCode.NOT_AVAILABLE) from err
        if since is not None and since.epoch != result.position.epoch:
            raise CommandError(ErrorCode.UNRECOVERABLE_POSITION)
        pubs = list(reversed(result.publications)) if reverse else result.publications
        return {
            "publications": [orjson.Fragment(encode_publication(p.data, p.offset)) for p in pubs],
            "epoch": result.position.epoch,
            "offset": result.position.offset,
        }

    async def _cmd_presence(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("channel")
        await self._check(conn, name, Action.PRESENCE)
        assert isinstance(name, str)
        try:
            clients = await self.node.bus.presence(name)
        except BusUnavailable as err:
            raise CommandError(ErrorCode.NOT_AVAILABLE) from err
        return {"presence": clients}

    async def _cmd_presence_stats(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
        presence = await self._cmd_presence(conn, params)
        clients = presence["presence"]
        return {
            "num_clients": len(clients),
            "num_users": len({c.get("user") for c in clients.values()}),
        }

    async def _cmd_rpc(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
        method = params.get("method")
        handler = self.rpc_methods.get(method) if isinstance(method, str) else None
        if handler is None:
            raise CommandError(ErrorCode.METHOD_NOT_FOUND)
        assert conn.identity is not None
        result = await handler(conn.identity, params.get("data"))
        return {"data": result}

    async def _cmd_send(self, conn: Connection, params: dict[str, Any]) -> None:
        return None  # asynchronous messages carry nothing the hub acts on

    async def _cmd_ping(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
        return {}

    # -- helpers --------------------------------------------------------------------------

    async def _check(self, conn: Connection, name: Any, action: Action) -> Any:
        try:
            channel = parse_channel(name)
        except ChannelError as err:
            raise CommandError(ErrorCode.UNKNOWN_CHANNEL, str(err)) from err
        assert conn.identity is not None
        guard = self.channel_guards.get(channel.kind)
        if guard is not None:
            permitted = action is not Action.PUBLISH and await guard(conn.identity, channel.key)
        else:
            permitted = allowed(conn.identity, channel, action)
        if not permitted:
            raise CommandError(ErrorCode.PERMISSION_DENIED)
        return channel

    def _presence_join(self, conn: Connection, channel: str) -> None:
        if conn.closed or conn.identity is None:
            return  # closed while subscribing: its presence was already cleared
        info = {"client": conn.client_id, "user": conn.identity.user}
        self.node.tasks.spawn(
            _quietly(self.node.bus.presence_add(channel, conn.client_id, info)),
            name="presence add",
        )

    def _presence_leave(self, conn: Connection, channel: str) -> None:
        self.node.tasks.spawn(
            _quietly(self.node.bus.presence_remove(channel, conn.client_id)),
            name="presence remove",
        )


async def _quietly(coro: Awaitable[None]) -> None:
    try:
        await coro
    except BusUnavailable:
        log.debug("presence update skipped: bus unavailable")


def _recovery_params(raw: Any) -> StreamPosition | None:
    if not isinstance(raw, dict):
        return None
    offset, epoch = raw.get("offset", 0), raw.get("epoch", "")
    if isinstance(offset, str) and offset.isascii() and offset.isdigit() and len(offset) <= 20:
        offset = int(offset)  # protobuf-JSON clients send uint64 as a string
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise CommandError(ErrorCode.BAD_REQUEST, "offset must be a non-negative integer")
    if not isinstance(epoch, str) or len(epoch) > 64:
        raise CommandError(ErrorCode.BAD_REQUEST, "epoch must be a string")
    return StreamPosition(offset, epoch)


def _is_complete(since: StreamPosition, result: HistoryResult, limit: int) -> bool:
    """Recovery succeeds only if every publication after ``since`` is there: same epoch,
    contiguous offsets up to the current position, not more than ``limit`` of them."""
    position = result.position
    if since.epoch != position.epoch or since.offset > position.offset:
        return False
    pubs = result.publications
    if len(pubs) > limit:
        return False
    expected = since.offset + 1
    for pub in pubs:
        if pub.offset != expected:
            return False
        expected += 1
    return expected - 1 == position.offset


__all__ = ["CommandError", "Disconnect", "Dispatcher", "encode_publication_push"]
