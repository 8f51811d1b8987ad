"""The WebSocket rpc methods of consultations (Centrifugo protocol ``rpc`` command).

* ``consultation.join`` — ``{"consultation_id", "offer"}`` → ``{"participant_id", "answer",
  "slots", "participants", "host"}``; the offer is at most ``consultations.max_sdp_bytes``.
* ``consultation.candidate`` — ``{"consultation_id", "candidate": {…}}`` (an
  RTCIceCandidateInit) → ``{}``.
* ``consultation.leave`` / ``consultation.end`` / ``consultation.accept`` /
  ``consultation.decline`` — ``{"consultation_id"}``.
* ``consultation.mute`` — ``{"consultation_id", "participant_id", "kind": "audio"|"video",
  "muted": bool}``.
* ``consultation.remove`` — ``{"consultation_id", "participant_id"}``.

Errors are protocol error replies whose message starts with the hub's error code
(``consultation.not_found: …``): 107 bad request for malformed data and refusals of state
(ended, room full, offer too large …), 103 permission denied for a room that is not the
caller's or an action that is not theirs, 108 not available when the database or the
media plane is unreachable.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.exc import SQLAlchemyError

from hub.auth.tokens import Identity
from hub.consultations.service import ConsultationService, Joined, participant_dict
from hub.errors import HubError
from hub.gateway.commands import CommandError, RpcHandler
from protocols.client import ErrorCode

ID_LENGTH = 26
MAX_ID = 80
MAX_CANDIDATE_BYTES = 2048


def _command_error(err: HubError) -> CommandError:
    if err.status in (403, 404):
        code = ErrorCode.PERMISSION_DENIED
    elif err.status >= 500:
        code = ErrorCode.NOT_AVAILABLE
    else:
        code = ErrorCode.BAD_REQUEST
    return CommandError(code, f"{err.code}: {err.message}")


def _invalid(message: str) -> CommandError:
    return CommandError(ErrorCode.BAD_REQUEST, f"consultation.invalid: {message}")


def _text(data: dict[str, Any], name: str, limit: int = MAX_ID) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise _invalid(f"{name} must be a non-empty string")
    return value


def _room_id(data: Any) -> tuple[dict[str, Any], str]:
    if not isinstance(data, dict):
        raise _invalid('data must be an object with "consultation_id"')
    room_id = _text(data, "consultation_id")
    if len(room_id) != ID_LENGTH:
        raise CommandError(ErrorCode.PERMISSION_DENIED, "consultation.not_found: no such room")
    return data, room_id


def joined_reply(joined: Joined) -> dict[str, Any]:
    """The reply of ``consultation.join``."""
    return {
        "participant_id": joined.participant_id,
        "answer": joined.answer,
        "slots": joined.slots,
        "participants": [participant_dict(p) for p in joined.participants],
        "host": joined.host,
    }


class ConsultationRpc:
    """The rpc handlers, bound to the consultation service."""

    def __init__(self, service: ConsultationService) -> None:
        self._service = service

    def methods(self) -> dict[str, RpcHandler]:
        """Method name → handler, for ``Gateway.register_rpc``."""
        return {
            "consultation.join": self.join,
            "consultation.candidate": self.candidate,
            "consultation.leave": self.leave,
            "consultation.mute": self.mute,
            "consultation.remove": self.remove,
            "consultation.end": self.end,
            "consultation.accept": self.accept,
            "consultation.decline": self.decline,
        }

    async def _call(self, coro: Any) -> Any:
        try:
            return await coro
        except HubError as err:
            raise _command_error(err) from err
        except SQLAlchemyError as err:
            raise CommandError(
                ErrorCode.NOT_AVAILABLE, f"service.unavailable: {type(err).__name__}"
            ) from err

    async def join(self, identity: Identity, data: Any) -> dict[str, Any]:
        """``consultation.join``."""
        data, room_id = _room_id(data)
        offer = data.get("offer")
        if not isinstance(offer, str) or not offer:
            raise _invalid("offer must be the SDP offer (a string)")
        limit = self._service.settings.max_sdp_bytes
        if len(offer) > limit:  # characters ≥ bytes / 4: cheap check before encoding
            raise CommandError(
                ErrorCode.BAD_REQUEST,
                f"consultation.offer_too_large: the SDP offer is over {limit} bytes",
            )
        joined: Joined = await self._call(self._service.join(identity, room_id, offer))
        return joined_reply(joined)

    async def candidate(self, identity: Identity, data: Any) -> dict[str, Any]:
        """``consultation.candidate``."""
        data, room_id = _room_id(data)
        candidate = data.get("candidate")
        if not isinstance(candidate, dict) or not isinstance(candidate.get("candidate"), str):
            raise _invalid('candidate must be an RTCIceCandidateInit {"candidate": "…", …}')
        if len(orjson.dumps(candidate)) > MAX_CANDIDATE_BYTES:
            raise _invalid(f"candidate is over {MAX_CANDIDATE_BYTES} bytes")
        await self._call(self._service.add_candidate(identity, room_id, candidate))
        return {}

    async def leave(self, identity: Identity, data: Any) -> dict[str, Any]:
        """``consultation.leave``."""
        _, room_id = _room_id(data)
        await self._call(self._service.leave(identity, room_id))
        return {}

    async def mute(self, identity: Identity, data: Any) -> dict[str, Any]:
        """``consultation.mute``."""
        data, room_id = _room_id(data)
        participant = _text(data, "participant_id")
        kind, muted = data.get("kind"), data.get("muted")
        if kind not in ("audio", "video") or not isinstance(muted, bool):
            raise _invalid('kind must be "audio" or "video" and muted a boolean')
        row = await self._call(self._service.mute(identity, room_id, participant, kind, muted))
        return participant_dict(row)

    async def remove(self, identity: Identity, data: Any) -> dict[str, Any]:
        """``consultation.remove``."""
        data, room_id = _room_id(data)
        participant = _text(data, "participant_id")
        await self._call(self._service.remove(identity, room_id, participant))
        return {}

    async def end(self, identity: Identity, data: Any) -> dict[str, Any]:
        """``consultation.end``."""
        _, room_id = _room_id(data)
        room = await self._call(self._service.end(identity, room_id))
        return {"consultation_id": room.id, "status": room.status}

    async def accept(self, identity: Identity, data: Any) -> dict[str, Any]:
        """``consultation.accept``."""
        _, room_id = _room_id(data)
        return participant_dict(await self._call(self._service.accept(identity, room_id)))

    async def decline(self, identity: Identity, data: Any) -> dict[str, Any]:
        """``consultation.decline``."""
        _, room_id = _room_id(data)
        return participant_dict(await self._call(self._service.decline(identity, room_id)))
