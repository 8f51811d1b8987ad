"""The SIP requests the hub sends to devices (MESSAGE queries and controls, INVITE for live
view), and the SDP offer of a live stream, as GB/T 28181 devices expect them."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import count

from protocols.sip.message import Headers, SipRequest, Via, new_branch, new_call_id, new_tag
from protocols.sip.sdp import MediaDescription, SessionDescription

MANSCDP = "Application/MANSCDP+xml"
SDP = "APPLICATION/SDP"
MAX_FORWARDS = "70"
USER_AGENT = "GridHub"
PS_PAYLOAD = 96
SDP_VIDEO_FORMATS = ["96", "97", "98"]
SDP_RTPMAP = [("rtpmap", "96 PS/90000"), ("rtpmap", "97 MPEG4/90000"), ("rtpmap", "98 H264/90000")]
ACTIVE_PLACEHOLDER_PORT = 9
"""The m= port when the hub connects out (TCP active): the device ignores it (RFC 4145)."""


@dataclass(slots=True)
class Local:
    """The hub as the devices see it."""

    sip_id: str
    domain: str
    host: str
    port: int

    def via(self, transport: str) -> Via:
        """A Via for a new request (rport asked for: devices behind NAT)."""
        params: dict[str, str | None] = {"branch": new_branch(), "rport": None}
        return Via(transport.upper(), self.host, self.port, params)

    @property
    def uri(self) -> str:
        """The hub's address-of-record."""
        return f"sip:{self.sip_id}@{self.domain}"

    @property
    def contact(self) -> str:
        """Where devices reach the hub."""
        return f"<sip:{self.sip_id}@{self.host}:{self.port}>"


class RequestFactory:
    """Builds requests with fresh branches and tags and increasing CSeq numbers."""

    def __init__(self, local: Local) -> None:
        self.local = local
        self._cseq = count(1)
        self._sn = count(1)

    def sn(self) -> int:
        """The next MANSCDP SN (wraps within a 31-bit positive range)."""
        return next(self._sn) % 2**31 or next(self._sn)

    def _base(
        self, method: str, target_uri: str, to_uri: str, transport: str, call_id: str | None
    ) -> SipRequest:
        local = self.local
        headers = Headers()
        headers.add("Via", str(local.via(transport)))
        headers.add("From", f"<{local.uri}>;tag={new_tag()}")
        headers.add("To", f"<{to_uri}>")
        headers.add("Call-ID", call_id or new_call_id(local.host))
        headers.add("CSeq", f"{next(self._cseq) % 2**31 or 1} {method}")
        headers.add("Max-Forwards", MAX_FORWARDS)
        headers.add("User-Agent", USER_AGENT)
        return SipRequest(method, target_uri, headers)

    def message(
        self, device_id: str, host: str, port: int, transport: str, body: bytes
    ) -> SipRequest:
        """A MESSAGE carrying a MANSCDP body to a device."""
        request = self._base(
            "MESSAGE",
            f"sip:{device_id}@{host}:{port}",
            f"sip:{device_id}@{self.local.domain}",
            transport,
            None,
        )
        request.headers.add("Content-Type", MANSCDP)
        request.body = body
        return request

    def invite(
        self,
        device_id: str,
        channel_id: str,
        host: str,
        port: int,
        transport: str,
        sdp: bytes,
        ssrc: str,
    ) -> SipRequest:
        """The INVITE of a live stream (Subject: channel:ssrc,hub:0 as the standard has it)."""
        request = self._base(
            "INVITE",
            f"sip:{channel_id}@{host}:{port}",
            f"sip:{channel_id}@{self.local.domain}",
            transport,
            None,
        )
        request.headers.add("Contact", self.local.contact)
        request.headers.add("Subject", f"{channel_id}:{ssrc},{self.local.sip_id}:0")
        request.headers.add("Content-Type", SDP)
        request.body = sdp
        del device_id  # the device is reached at host:port; the channel is the target
        return request


def live_offer(sip_id: str, media_ip: str, port: int, transport: str, ssrc: str) -> bytes:
    """The SDP of a live stream request: receive MPEG-PS (PT 96) at media_ip:port, over
    TCP (passive: the device connects; active: the hub does) or UDP, with SSRC ``ssrc``."""
    attributes: list[tuple[str, str | None]] = [("recvonly", None), *SDP_RTPMAP]
    proto = "RTP/AVP"
    if transport != "udp":
        proto = "TCP/RTP/AVP"
        setup = "passive" if transport == "tcp_passive" else "active"
        attributes += [("setup", setup), ("connection", "new")]
        if transport == "tcp_active":
            port = ACTIVE_PLACEHOLDER_PORT
    media = MediaDescription("video", port, proto, list(SDP_VIDEO_FORMATS), attributes)
    description = SessionDescription(
        origin_user=sip_id,
        session_id="0",
        session_version="0",
        origin_address=media_ip,
        session_name="Play",
        connection=media_ip,
        media=[media],
        ssrc=ssrc,
    )
    return description.encode()
