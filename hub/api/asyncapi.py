"""The AsyncAPI 3.0 document of the WebSocket side, generated from ``hub.events.EVENT_TYPES``:
adding an event class adds its message here.

The document describes the hub as the application: it *sends* events on channels to
subscribed clients and *receives* the console's ``publish`` commands.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from hub.api.openapi import REF_TEMPLATE, hub_version
from hub.auth.channels import PUBLISH_ROLES
from hub.events import EVENT_TYPES, MessagePosted
from protocols.envelope import ORG_MAX_DEPTH, SPEC_VERSION

ASYNCAPI_VERSION = "3.0.0"
WEBSOCKET_PATH = "/connection/websocket"
PUBLISH_MESSAGE = "publish"
OBJECT_KINDS = {
    "case": (
        "A case's own channel: its changes (`case.*`). Readable by users whose org subtree "
        "holds the case, its assignee and its reporter; the hub's case service decides."
    ),
    "camera": (
        "A camera's status, alarms and finished recordings (`camera.*`). Readable by users "
        "whose org subtree holds the camera."
    ),
    "room": (
        "A consultation room's events (`consultation.*`: participants joining and leaving, "
        "mutes, host changes, cameras, the active speaker, receive-slot assignments, the "
        "end). Readable by the room's host and its participants (invited, accepted, "
        "joined, or left and free to rejoin; not those who declined or were removed)."
    ),
}
"""Per-object channels: the owning service answers each subscription; only the hub
publishes on them."""
OBJECT_PREFIX = {"case": "case.", "camera": "camera.", "room": "consultation."}


class EventEnvelope(BaseModel):
    """The CloudEvents 1.0-shaped envelope every event travels in (protocols/envelope.py).

    Over the WebSocket it is the ``data`` of a Centrifugo publication."""

    model_config = ConfigDict(extra="forbid")

    specversion: Literal["1.0"] = Field(description="CloudEvents spec version.")
    id: str = Field(
        pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$",
        description="ULID, unique and time-sortable; consumers deduplicate by it.",
    )
    type: str = Field(description="The event type, e.g. alert.raised.")
    source: str = Field(description="Who produced it: hub/<service> or external/<api key id>.")
    time: datetime = Field(description="When it happened (RFC 3339, UTC).")
    org: str = Field(description="The org node it is about (dotted path).")
    subject: str | None = Field(None, description="What inside the org node it is about.")
    data: dict[str, Any] = Field(description="The event type's data (see each message).")


def build_asyncapi(host: str) -> dict[str, Any]:
    """The AsyncAPI document; ``host`` is how the client reached this hub."""
    models: list[tuple[type[BaseModel], Literal["serialization"]]] = [
        (EventEnvelope, "serialization"),
        *((cls, "serialization") for cls in EVENT_TYPES.values()),
    ]
    refs, top = models_json_schema(models, ref_template=REF_TEMPLATE)
    envelope_ref = refs[(EventEnvelope, "serialization")]
    messages: dict[str, Any] = {}
    for event_type, cls in EVENT_TYPES.items():
        messages[event_type] = {
            "name": event_type,
            "title": cls.__name__,
            "summary": cls.summary,
            "description": (cls.__doc__ or "").strip()
            + (" External systems may push it via POST /api/v1/events." if cls.external else ""),
            "contentType": "application/json",
            "payload": {
                "allOf": [
                    envelope_ref,
                    {
                        "type": "object",
                        "required": ["type", "data"],
                        "properties": {
                            "type": {"const": event_type},
                            "data": refs[(cls, "serialization")],
                        },
                    },
                ]
            },
            "x-external": cls.external,
        }
    messages[PUBLISH_MESSAGE] = {
        "name": PUBLISH_MESSAGE,
        "title": "Publish a console message",
        "summary": "The data of a client's publish command on an org channel.",
        "description": (
            f"Allowed to the roles {', '.join(PUBLISH_ROLES)} on org channels of their "
            f"subtree. The hub validates it as `{MessagePosted.type}` data, sets `author` to "
            "the caller and publishes it in an envelope to the node and its ancestors."
        ),
        "contentType": "application/json",
        "payload": refs[(MessagePosted, "serialization")],
    }
    event_refs = {t: {"$ref": f"#/components/messages/{t}"} for t in EVENT_TYPES}
    channels: dict[str, Any] = {
        "org": {
            "address": "org:{path}",
            "title": "Org node",
            "description": (
                "Everything about an org node and its descendants: an event about a node is "
                "published to the node's channel and each ancestor's, so each tier's centre "
                "subscribes to one channel. A user may subscribe to `org:<p>` only if their "
                "own org path is a prefix of p. Subscriptions are recoverable (offset + "
                "epoch) and have history and presence."
            ),
            "parameters": {
                "path": {
                    "description": (
                        f"Dotted org path, up to {ORG_MAX_DEPTH} segments of [a-z][a-z0-9_-]*, "
                        "e.g. d01.s01.c01.g01 (district.street.community.grid)."
                    ),
                    "examples": ["d01", "d01.s01.c01.g01"],
                }
            },
            "messages": {**event_refs, PUBLISH_MESSAGE: {"$ref": "#/components/messages/publish"}},
        },
        "user": {
            "address": "user:{id}",
            "title": "Personal",
            "description": (
                "A user's personal channel (notices, assignments, invitations). The hub "
                "subscribes the connection to it server-side on connect; nobody else may "
                "subscribe, and clients may not publish to it."
            ),
            "parameters": {"id": {"description": "The user id (the token's sub claim)."}},
            "messages": dict(event_refs),
        },
    }
    for kind, what in OBJECT_KINDS.items():
        channels[kind] = {
            "address": f"{kind}:{{id}}",
            "title": f"Per-object: {kind}",
            "description": f"{what} Clients may not publish to it.",
            "parameters": {"id": {"description": f"The {kind} id."}},
            "messages": {
                t: ref for t, ref in event_refs.items() if t.startswith(OBJECT_PREFIX[kind])
            },
        }
    operations: dict[str, Any] = {
        "sendOrgEvents": {
            "action": "send",
            "title": "Events on org channels",
            "summary": "Every event about a node, on its and its ancestors' channels.",
            "channel": {"$ref": "#/channels/org"},
            "messages": [{"$ref": f"#/channels/org/messages/{t}"} for t in EVENT_TYPES],
        },
        "sendUserEvents": {
            "action": "send",
            "title": "Personal events",
            "channel": {"$ref": "#/channels/user"},
            "messages": [{"$ref": f"#/channels/user/messages/{t}"} for t in EVENT_TYPES],
        },
        "receiveOrgPublish": {
            "action": "receive",
            "title": "Console messages",
            "summary": "A console user publishes a short message to an org channel.",
            "channel": {"$ref": "#/channels/org"},
            "messages": [{"$ref": f"#/channels/org/messages/{PUBLISH_MESSAGE}"}],
        },
    }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Grid Hub live events",
            "version": hub_version(),
            "description": (
                "The hub's WebSocket side. Wire protocol: the Centrifugo bidirectional client "
                "protocol, JSON encoding (connect, subscribe with recovery, publish, history, "
                "presence, rpc), so the official Centrifuge SDKs work unchanged. Each event "
                f"is a CloudEvents {SPEC_VERSION} envelope carried as a publication's data."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "hub": {
                "host": host,
                "protocol": "ws",
                "pathname": WEBSOCKET_PATH,
                "title": "Grid Hub WebSocket endpoint",
                "description": (
                    "Centrifugo client protocol, JSON encoding (one JSON command per line). "
                    "Authenticate with a JWT in the first `connect` command. Use wss behind "
                    "TLS termination."
                ),
                "security": [{"$ref": "#/components/securitySchemes/jwt"}],
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": dict(top.get("$defs", {})),
            "messages": messages,
            "securitySchemes": {
                "jwt": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": (
                        "Sent as `token` in the connect command (not an HTTP header). Claims: "
                        "`sub` (user id), `org` (org path), `roles`, `exp`."
                    ),
                }
            },
        },
    }
