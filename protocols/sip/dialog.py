"""SIP dialog state (RFC 3261 12) and ACK construction (17.1.1.3, 13.2.2.4)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from protocols.sip.addresses import Via, parse_name_addr
from protocols.sip.errors import SipParseError
from protocols.sip.headers import Headers
from protocols.sip.message import SipRequest, SipResponse, is_success, new_branch

MAX_FORWARDS = "70"
_AUTH_HEADERS = ("Authorization", "Proxy-Authorization")


def _with_new_branch(via: Via) -> Via:
    params = {name: value for name, value in via.params.items() if name != "branch"}
    return Via(via.transport, via.host, via.port, {**params, "branch": new_branch()})


def _contact_uri(message: SipRequest | SipResponse) -> str:
    contact = message.headers.get("Contact")
    if contact is None:
        raise SipParseError("a dialog needs a Contact header")
    return str(parse_name_addr(contact).uri)


@dataclass
class Dialog:
    """The state of one dialog from our side."""

    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str
    remote_uri: str
    remote_target: str
    local_cseq: int
    route_set: list[str] = field(default_factory=list)
    remote_cseq: int | None = None
    local_contact: str | None = None

    @classmethod
    def from_uac(cls, invite: SipRequest, response: SipResponse) -> Dialog:
        """The dialog a 2xx (or tagged 1xx) creates for the INVITE we sent (RFC 3261 12.1.2)."""
        local_tag = invite.from_tag
        remote_tag = response.to_tag
        if local_tag is None or remote_tag is None:
            raise SipParseError("a dialog needs both From and To tags")
        contact = invite.headers.get("Contact")
        return cls(
            call_id=invite.call_id,
            local_tag=local_tag,
            remote_tag=remote_tag,
            local_uri=str(invite.from_addr.uri),
            remote_uri=str(invite.to_addr.uri),
            remote_target=_contact_uri(response),
            local_cseq=invite.cseq[0],
            route_set=list(reversed(response.headers.get_all("Record-Route"))),
            local_contact=str(parse_name_addr(contact).uri) if contact else None,
        )

    @classmethod
    def from_uas(cls, invite: SipRequest, local_tag: str, local_contact: str) -> Dialog:
        """The dialog we create when answering an INVITE (RFC 3261 12.1.1)."""
        remote_tag = invite.from_tag
        if remote_tag is None:
            raise SipParseError("the INVITE has no From tag")
        return cls(
            call_id=invite.call_id,
            local_tag=local_tag,
            remote_tag=remote_tag,
            local_uri=str(invite.to_addr.uri),
            remote_uri=str(invite.from_addr.uri),
            remote_target=_contact_uri(invite),
            local_cseq=0,
            route_set=invite.headers.get_all("Record-Route"),
            remote_cseq=invite.cseq[0],
            local_contact=local_contact,
        )

    def _target_and_routes(self) -> tuple[str, list[str]]:
        if not self.route_set:
            return self.remote_target, []
        first = parse_name_addr(self.route_set[0])
        if "lr" in first.uri.params:
            return self.remote_target, list(self.route_set)
        # RFC 3261 12.2.1.1: a strict router goes in the Request-URI, the target last.
        return str(first.uri), [*self.route_set[1:], f"<{self.remote_target}>"]

    def request(
        self,
        method: str,
        via: Via,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra: Iterable[tuple[str, str]] = (),
        cseq: int | None = None,
    ) -> SipRequest:
        """A request within the dialog (BYE, INFO, MESSAGE…) with a fresh branch."""
        if cseq is None:
            self.local_cseq += 1
            cseq = self.local_cseq
        uri, routes = self._target_and_routes()
        headers = Headers(
            [
                ("Via", str(_with_new_branch(via))),
                ("Max-Forwards", MAX_FORWARDS),
                ("From", f"<{self.local_uri}>;tag={self.local_tag}"),
                ("To", f"<{self.remote_uri}>;tag={self.remote_tag}"),
                ("Call-ID", self.call_id),
                ("CSeq", f"{cseq} {method}"),
            ]
        )
        for route in routes:
            headers.add("Route", route)
        if self.local_contact is not None:
            headers.add("Contact", f"<{self.local_contact}>")
        for name, value in extra:
            headers.add(name, value)
        if content_type is not None:
            headers.set("Content-Type", content_type)
        return SipRequest(method, uri, headers, body)


def make_ack(invite: SipRequest, response: SipResponse, via: Via | None = None) -> SipRequest:
    """The ACK for a final response to our INVITE (2xx: new transaction; else same branch)."""
    number = invite.cseq[0]
    if is_success(response.status):
        dialog = Dialog.from_uac(invite, response)
        ack = dialog.request("ACK", via or invite.top_via, cseq=number)
        for name in _AUTH_HEADERS:
            for value in invite.headers.get_all(name):
                ack.headers.add(name, value)
        return ack
    to = response.headers.get("To")
    if to is None:
        raise SipParseError("the response has no To header")
    headers = Headers(
        [
            ("Via", str(invite.top_via)),
            ("Max-Forwards", MAX_FORWARDS),
            ("From", invite.headers.get("From") or ""),
            ("To", to),
            ("Call-ID", invite.call_id),
            ("CSeq", f"{number} ACK"),
        ]
    )
    for route in invite.headers.get_all("Route"):
        headers.add("Route", route)
    return SipRequest("ACK", invite.uri, headers)
