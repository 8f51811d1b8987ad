"""A stand-in ONVIF camera: an aiohttp app on 127.0.0.1:0 that speaks SOAP 1.2 like a
real PTZ camera (device, media and PTZ services at their usual paths), checks the
WS-Security UsernameToken digest of every request and records the calls.

Element names follow the WSDLs/XSDs shipped with onvif-zeep-async (devicemgmt.wsdl,
media.wsdl, ptz.wsdl, onvif.xsd). Only what a PTZ client needs is answered; anything else
gets the fault a camera sends for an unsupported action.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from aiohttp import web

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
TT = "http://www.onvif.org/ver10/schema"
TDS = "http://www.onvif.org/ver10/device/wsdl"
TRT = "http://www.onvif.org/ver10/media/wsdl"
TPTZ = "http://www.onvif.org/ver20/ptz/wsdl"
TER = "http://www.onvif.org/ver10/error"
SOAP_TYPE = "application/soap+xml"

DEVICE_PATH = "/onvif/device_service"
MEDIA_PATH = "/onvif/media_service"
PTZ_PATH = "/onvif/ptz_service"
SHUTDOWN_TIMEOUT = 0.5
SERVICE_OF_PATH = {DEVICE_PATH: TDS, MEDIA_PATH: TRT, PTZ_PATH: TPTZ}

_ENVELOPE = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    f'<env:Envelope xmlns:env="{SOAP12}" xmlns:tt="{TT}" xmlns:tds="{TDS}" '
    f'xmlns:trt="{TRT}" xmlns:tptz="{TPTZ}" xmlns:ter="{TER}">'
    "<env:Body>{body}</env:Body></env:Envelope>"
)


@dataclass(frozen=True)
class OnvifCall:
    """One authenticated request the camera answered: the operation and its arguments."""

    operation: str
    args: dict[str, Any]


@dataclass
class FakeOnvifCamera:
    """The fake camera; ``start()`` binds it, ``calls`` holds what it was asked."""

    username: str
    password: str
    presets: dict[str, str] = field(
        default_factory=lambda: {"1": "Gate", "2": "Crossing"}
    )  # token → name
    ptz_capable: bool = True
    hang: bool = False
    """Accept requests but never answer (a camera that stopped responding)."""
    calls: list[OnvifCall] = field(default_factory=list)
    auth_failures: int = 0
    port: int = 0
    _runner: web.AppRunner | None = None
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def host_url(self) -> str:
        """``http://127.0.0.1:<port>``: where its device service lives."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def device_url(self) -> str:
        """The device service URL."""
        return self.host_url + DEVICE_PATH

    async def start(self) -> FakeOnvifCamera:
        """Listen on 127.0.0.1 (a free port, or the previous one after a restart)."""
        app = web.Application()
        for path in SERVICE_OF_PATH:
            app.router.add_post(path, self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        if not self.port:
            server = site._server
            assert isinstance(server, asyncio.Server)
            self.port = server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Stop listening (the port is kept for a restart)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def operations(self) -> list[str]:
        """The operations received so far, in order."""
        return [c.operation for c in self.calls]

    async def wait_for(self, operation: str, count: int = 1, timeout: float = 10.0) -> OnvifCall:
        """The ``count``-th call of ``operation`` once it arrived."""

        def found() -> bool:
            return self.operations().count(operation) >= count

        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(found)
        return [c for c in self.calls if c.operation == operation][count - 1]

    # -- SOAP ----------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        if self.hang:
            await asyncio.sleep(3600)
        if request.content_type != SOAP_TYPE:
            return web.Response(status=415, text="SOAP 1.2 expected")
        try:
            root = ET.fromstring(await request.read())
        except ET.ParseError:
            return _fault("env:Sender", "ter:WellFormed", "not well-formed XML")
        header = root.find(f"{{{SOAP12}}}Header")
        body = root.find(f"{{{SOAP12}}}Body")
        if root.tag != f"{{{SOAP12}}}Envelope" or body is None or len(body) == 0:
            return _fault("env:Sender", "ter:WellFormed", "not a SOAP 1.2 envelope")
        request_element = body[0]
        namespace, _, operation = request_element.tag[1:].partition("}")
        if not self._authorized(header):
            self.auth_failures += 1
            return _fault("env:Sender", "ter:NotAuthorized", "Sender not Authorized")
        if namespace != SERVICE_OF_PATH[request.path] or (
            namespace == TPTZ and not self.ptz_capable
        ):
            return _fault("env:Receiver", "ter:ActionNotSupported", f"no {operation} here")
        handler = getattr(self, f"_op_{operation}", None)
        if handler is None:
            return _fault("env:Receiver", "ter:ActionNotSupported", f"{operation} unsupported")
        args = _args(request_element)
        reply: web.Response = handler(request_element, args)
        if reply.status == 200:
            async with self._changed:
                self.calls.append(OnvifCall(operation, args))
                self._changed.notify_all()
        return reply

    def _authorized(self, header: ET.Element | None) -> bool:
        """The WS-Security UsernameToken digest: Base64(SHA-1(nonce + created + password))."""
        token = None if header is None else header.find(f".//{{{WSSE}}}UsernameToken")
        if token is None:
            return False
        username = token.findtext(f"{{{WSSE}}}Username")
        password = token.find(f"{{{WSSE}}}Password")
        nonce = token.findtext(f"{{{WSSE}}}Nonce")
        created = token.findtext(f"{{{WSU}}}Created")
        if username != self.username or password is None or not nonce or not created:
            return False
        if not (password.get("Type") or "").endswith("#PasswordDigest"):
            return False
        try:
            raw_nonce = base64.b64decode(nonce, validate=True)
        except ValueError:
            return False
        digest = hashlib.sha1(raw_nonce + created.encode() + self.password.encode()).digest()
        return hmac.compare_digest(base64.b64encode(digest).decode(), (password.text or "").strip())

    # -- device service ------------------------------------------------------------------

    def _op_GetServices(self, _: ET.Element, __: dict[str, Any]) -> web.Response:
        services = [(TDS, DEVICE_PATH), (TRT, MEDIA_PATH)]
        if self.ptz_capable:
            services.append((TPTZ, PTZ_PATH))
        items = "".join(
            f"<tds:Service><tds:Namespace>{ns}</tds:Namespace>"
            f"<tds:XAddr>{self.host_url}{path}</tds:XAddr>"
            "<tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version>"
            "</tds:Service>"
            for ns, path in services
        )
        return _reply(f"<tds:GetServicesResponse>{items}</tds:GetServicesResponse>")

    def _op_GetCapabilities(self, _: ET.Element, __: dict[str, Any]) -> web.Response:
        ptz = f"<tt:PTZ><tt:XAddr>{self.host_url}{PTZ_PATH}</tt:XAddr></tt:PTZ>"
        return _reply(
            "<tds:GetCapabilitiesResponse><tds:Capabilities>"
            f"<tt:Media><tt:XAddr>{self.host_url}{MEDIA_PATH}</tt:XAddr>"
            "<tt:StreamingCapabilities><tt:RTPMulticast>false</tt:RTPMulticast>"
            "<tt:RTP_TCP>true</tt:RTP_TCP><tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP>"
            "</tt:StreamingCapabilities></tt:Media>"
            f"{ptz if self.ptz_capable else ''}"
            "</tds:Capabilities></tds:GetCapabilitiesResponse>"
        )

    def _op_GetDeviceInformation(self, _: ET.Element, __: dict[str, Any]) -> web.Response:
        return _reply(
            "<tds:GetDeviceInformationResponse><tds:Manufacturer>GridHub Test</tds:Manufacturer>"
            "<tds:Model>FakePTZ</tds:Model><tds:FirmwareVersion>1.0</tds:FirmwareVersion>"
            "<tds:SerialNumber>0001</tds:SerialNumber><tds:HardwareId>1</tds:HardwareId>"
            "</tds:GetDeviceInformationResponse>"
        )

    # -- media service -------------------------------------------------------------------

    def _op_GetProfiles(self, _: ET.Element, __: dict[str, Any]) -> web.Response:
        # The first profile (a substream) has no PTZ configuration: a client must look on.
        ptz = (
            '<tt:PTZConfiguration token="ptz_cfg"><tt:Name>PTZ</tt:Name>'
            "<tt:UseCount>1</tt:UseCount><tt:NodeToken>ptz_node</tt:NodeToken>"
            "<tt:DefaultPTZTimeout>PT5S</tt:DefaultPTZTimeout></tt:PTZConfiguration>"
        )
        profiles = (
            '<trt:Profiles token="prof_sub" fixed="true"><tt:Name>sub</tt:Name></trt:Profiles>'
            '<trt:Profiles token="prof_main" fixed="true"><tt:Name>main</tt:Name>'
            f"{ptz if self.ptz_capable else ''}</trt:Profiles>"
        )
        return _reply(f"<trt:GetProfilesResponse>{profiles}</trt:GetProfilesResponse>")

    # -- PTZ service ---------------------------------------------------------------------

    def _op_ContinuousMove(self, element: ET.Element, args: dict[str, Any]) -> web.Response:
        if args.get("ProfileToken") != "prof_main":
            return _fault("env:Sender", "ter:InvalidArgVal", "no such profile", "ter:NoProfile")
        velocity = element.find(f"{{{TPTZ}}}Velocity")
        pan_tilt = None if velocity is None else velocity.find(f"{{{TT}}}PanTilt")
        zoom = None if velocity is None else velocity.find(f"{{{TT}}}Zoom")
        args["pan"] = None if pan_tilt is None else float(pan_tilt.get("x", "nan"))
        args["tilt"] = None if pan_tilt is None else float(pan_tilt.get("y", "nan"))
        args["zoom"] = None if zoom is None else float(zoom.get("x", "nan"))
        return _reply("<tptz:ContinuousMoveResponse/>")

    def _op_Stop(self, _: ET.Element, args: dict[str, Any]) -> web.Response:
        if args.get("ProfileToken") != "prof_main":
            return _fault("env:Sender", "ter:InvalidArgVal", "no such profile", "ter:NoProfile")
        return _reply("<tptz:StopResponse/>")

    def _op_GetPresets(self, _: ET.Element, args: dict[str, Any]) -> web.Response:
        items = "".join(
            f"<tptz:Preset token={quoteattr(token)}><tt:Name>{escape(name)}</tt:Name></tptz:Preset>"
            for token, name in self.presets.items()
        )
        return _reply(f"<tptz:GetPresetsResponse>{items}</tptz:GetPresetsResponse>")

    def _op_GotoPreset(self, _: ET.Element, args: dict[str, Any]) -> web.Response:
        if args.get("PresetToken") not in self.presets:
            return _fault("env:Sender", "ter:InvalidArgVal", "no such preset", "ter:NoToken")
        return _reply("<tptz:GotoPresetResponse/>")


def _args(element: ET.Element) -> dict[str, Any]:
    """The text of the request's direct children, by local name."""
    return {child.tag.rpartition("}")[2]: (child.text or "").strip() for child in element}


def _reply(body: str) -> web.Response:
    return web.Response(text=_ENVELOPE.format(body=body), content_type=SOAP_TYPE, charset="utf-8")


def _fault(code: str, subcode: str, reason: str, subsubcode: str | None = None) -> web.Response:
    """A SOAP 1.2 fault as ONVIF cameras send it (HTTP 400 for the sender's fault)."""
    inner = f"<env:Subcode><env:Value>{subsubcode}</env:Value></env:Subcode>" if subsubcode else ""
    body = (
        f"<env:Fault><env:Code><env:Value>{code}</env:Value><env:Subcode>"
        f"<env:Value>{subcode}</env:Value>{inner}</env:Subcode></env:Code>"
        f'<env:Reason><env:Text xml:lang="en">{escape(reason)}</env:Text></env:Reason>'
        "</env:Fault>"
    )
    status = 400 if code == "env:Sender" else 500
    return web.Response(
        status=status, text=_ENVELOPE.format(body=body), content_type=SOAP_TYPE, charset="utf-8"
    )
