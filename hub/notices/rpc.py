"""The WebSocket rpc methods of notices (Centrifugo protocol ``rpc`` command).

* ``notice.read`` — data ``{"notice_id": "<id>"}``: mark read (``read_via=ws``); replies
  with the receipt, the same one on every later call.
* ``notice.unread`` — data ``{}`` or ``{"limit": n}``: the caller's unread notices, newest
  first, with the unread and total counts. A console calls it right after connecting (and
  after each reconnect): what arrived while it was away comes from the database, not from
  channel history. A notice published between connect and this call can arrive both ways:
  deduplicate by ``id``.

Errors are protocol error replies whose message starts with the hub's error code
(``notice.not_found: …``): 107 bad request for malformed data, 103 permission denied for
a notice that is not the caller's, 108 not available when the database is unreachable.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from hub.auth.tokens import Identity
from hub.gateway.commands import CommandError
from hub.notices import queries
from hub.notices.service import NoticeError, NoticeService
from protocols.client import ErrorCode

UNREAD_DEFAULT = 50
UNREAD_MAX = 200
NOTICE_ID_LENGTH = 26


def _command_error(err: NoticeError) -> CommandError:
    code = ErrorCode.PERMISSION_DENIED if err.status in (403, 404) else ErrorCode.BAD_REQUEST
    return CommandError(code, f"{err.code}: {err.message}")


def _unavailable(err: SQLAlchemyError) -> CommandError:
    return CommandError(ErrorCode.NOT_AVAILABLE, f"service.unavailable: {type(err).__name__}")


class NoticeRpc:
    """The rpc handlers, bound to the notice service."""

    def __init__(self, service: NoticeService) -> None:
        self._service = service

    async def read(self, identity: Identity, data: Any) -> dict[str, Any]:
        """``notice.read``."""
        notice_id = data.get("notice_id") if isinstance(data, dict) else None
        if not isinstance(notice_id, str) or not notice_id:
            raise CommandError(
                ErrorCode.BAD_REQUEST, 'notice.invalid: data must be {"notice_id": "<id>"}'
            )
        if len(notice_id) != NOTICE_ID_LENGTH:
            raise CommandError(ErrorCode.PERMISSION_DENIED, "notice.not_found: no such notice")
        try:
            receipt = await self._service.read(identity, notice_id, "ws")
        except NoticeError as err:
            raise _command_error(err) from err
        except SQLAlchemyError as err:
            raise _unavailable(err) from err
        return receipt.model_dump(mode="json")

    async def unread(self, identity: Identity, data: Any) -> dict[str, Any]:
        """``notice.unread``."""
        data = data if data is not None else {}
        limit = data.get("limit", UNREAD_DEFAULT) if isinstance(data, dict) else None
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= UNREAD_MAX:
            raise CommandError(
                ErrorCode.BAD_REQUEST,
                f'notice.invalid: data must be {{}} or {{"limit": 1..{UNREAD_MAX}}}',
            )
        try:
            async with self._service.sessions() as session:
                items, _ = await queries.inbox(
                    session, identity.user, limit=limit, unread_only=True
                )
                unread, total = await queries.inbox_counts(session, identity.user)
        except SQLAlchemyError as err:
            raise _unavailable(err) from err
        return {
            "unread": unread,
            "total": total,
            "notices": [item.model_dump(mode="json", exclude={"read_at"}) for item in items],
        }
