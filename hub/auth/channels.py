"""Channel names and who may do what on them (ARCHITECTURE.md, "Channels and permissions")."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from hub.auth.tokens import Identity
from protocols.envelope import EnvelopeError, org_contains, validate_org_path

MAX_CHANNEL_LENGTH = 255
PUBLISH_ROLES = ("dispatcher", "leader", "admin")


class Action(Enum):
    """What a client wants to do on a channel."""

    SUBSCRIBE = "subscribe"
    HISTORY = "history"
    PRESENCE = "presence"
    PUBLISH = "publish"


@dataclass(frozen=True, slots=True)
class Channel:
    """A parsed channel name: ``kind:key``."""

    kind: str
    key: str

    @property
    def name(self) -> str:
        """The channel name as clients write it."""
        return f"{self.kind}:{self.key}"


class ChannelError(ValueError):
    """A channel name the hub does not know."""


KINDS = frozenset({"org", "user", "case", "camera", "room"})


def parse_channel(name: str) -> Channel:
    """Parse ``kind:key``; raise ChannelError for anything unknown or malformed."""
    if not isinstance(name, str) or not name or len(name) > MAX_CHANNEL_LENGTH:
        raise ChannelError("channel name missing or too long")
    kind, sep, key = name.partition(":")
    if not sep or kind not in KINDS or not key:
        raise ChannelError(f"unknown channel {name[:64]!r}")
    if kind == "org":
        try:
            validate_org_path(key)
        except EnvelopeError as err:
            raise ChannelError(str(err)) from err
    elif not key.isprintable() or any(c in key for c in " :\n"):
        raise ChannelError("bad channel key")
    return Channel(kind, key)


def org_channel(path: str) -> str:
    """The channel of an org node."""
    return f"org:{path}"


def user_channel(user: str) -> str:
    """A user's personal channel."""
    return f"user:{user}"


def allowed(identity: Identity, channel: Channel, action: Action) -> bool:
    """The permission rule. Per-object kinds (case, camera, room) are granted by their
    services once those exist; until then nobody but an admin of the root may use them."""
    if channel.kind == "org":
        if not org_contains(identity.org, channel.key):
            return False
        if action is Action.PUBLISH:
            return identity.has_any(*PUBLISH_ROLES)
        return True
    if channel.kind == "user":
        return channel.key == identity.user and action is not Action.PUBLISH
    return False
