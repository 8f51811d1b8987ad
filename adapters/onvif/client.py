"""One camera's PTZ over ONVIF (device → media → PTZ services), on onvif-zeep-async.

The client knows nothing of the hub but its error type: every library error is translated
at this boundary into a ``HubError`` with a documented ``camera.ptz_*`` code, and every
call to the camera is time-boxed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import structlog

from hub.errors import HubError

log = structlog.get_logger(__name__)

T = TypeVar("T")

DEVICE_SERVICE_PATH = "/onvif/device_service"
"""Where ONVIF puts the device service (ONVIF Core Specification, 5.1.1)."""
DEFAULT_PORTS = {"http": 80, "https": 443}
HTTP_AUTH_STATUSES = (401, 403)
NOT_AUTHORIZED = "NotAuthorized"
NO_TOKEN = ("NoToken", "NoEntity")
NOT_SUPPORTED = ("ActionNotSupported", "NoPTZProfile", "NotSupported")


def _import_onvif() -> Any:
    """``import onvif`` without the ``logging.basicConfig`` its import runs: the hub
    configures logging itself (hub/logs.py) and wants no second root handler."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        import onvif
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    return onvif


_onvif = _import_onvif()
from onvif.exceptions import ONVIFAuthError, ONVIFError, ONVIFTimeoutError  # noqa: E402
from zeep.exceptions import Error as ZeepError  # noqa: E402
from zeep.exceptions import Fault, TransportError  # noqa: E402


@dataclass(frozen=True, slots=True)
class OnvifEndpoint:
    """Where a camera's ONVIF device service is, and how to sign in."""

    scheme: str
    host: str
    port: int
    username: str | None
    password: str | None

    @classmethod
    def of(
        cls, onvif_url: str | None, source_url: str, username: str | None, password: str | None
    ) -> OnvifEndpoint:
        """From the camera's ``onvif_url``, else its stream's host on port 80."""
        if onvif_url:
            parts = urlsplit(onvif_url)
            scheme = parts.scheme
        else:
            parts = urlsplit(source_url)
            scheme = "http"
        if not parts.hostname or scheme not in DEFAULT_PORTS:
            raise HubError(
                "camera.ptz_unsupported", "the camera has no ONVIF address to reach", 409
            )
        port = (parts.port if onvif_url else None) or DEFAULT_PORTS[scheme]
        return cls(scheme, parts.hostname, port, username, password)

    @property
    def device_url(self) -> str:
        """The device service URL."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{DEVICE_SERVICE_PATH}"

    def __repr__(self) -> str:  # keep the password out of logs and tracebacks
        return f"OnvifEndpoint({self.device_url!r}, username={self.username!r})"


@dataclass(frozen=True, slots=True)
class PtzTimeouts:
    """Time limits (s): signing in (several round trips and WSDL loading) and one call."""

    connect: float
    call: float


@dataclass(frozen=True, slots=True)
class PtzPreset:
    """A stored camera position."""

    token: str
    name: str | None


class PtzClient:
    """A connected camera's PTZ service and the media profile it drives."""

    def __init__(self, endpoint: OnvifEndpoint, timeouts: PtzTimeouts) -> None:
        self.endpoint = endpoint
        self.timeouts = timeouts
        self.profile_token: str | None = None
        self._camera: Any = None
        self._ptz: Any = None

    async def connect(self) -> None:
        """Sign in, find the services, pick the first media profile with a PTZ
        configuration. Closes what it opened if it fails."""
        endpoint = self.endpoint
        base = f"{endpoint.scheme}://{endpoint.host}"
        self._camera = _onvif.ONVIFCamera(
            base, endpoint.port, endpoint.username, endpoint.password, no_cache=True
        )
        try:
            await self._guard(self._setup(), self.timeouts.connect, "connecting")
        except BaseException:
            await self.close()
            raise

    async def _setup(self) -> None:
        camera = self._camera
        await camera.update_xaddrs()
        media = await camera.create_media_service()
        profiles = await media.GetProfiles()
        token = next(
            (p.token for p in profiles or () if getattr(p, "PTZConfiguration", None)), None
        )
        if token is None:
            raise HubError("camera.ptz_unsupported", "no media profile of the camera has PTZ", 409)
        self._ptz = await camera.create_ptz_service()
        self.profile_token = token

    async def continuous_move(self, pan: float, tilt: float, zoom: float, seconds: float) -> None:
        """Move at these velocities (each in [-1, 1]) until stopped or ``seconds`` pass."""
        request = {
            "ProfileToken": self.profile_token,
            "Velocity": {"PanTilt": {"x": pan, "y": tilt}, "Zoom": {"x": zoom}},
            "Timeout": timedelta(seconds=seconds),
        }
        await self._call("ContinuousMove", request)

    async def stop(self) -> None:
        """Stop pan, tilt and zoom."""
        await self._call("Stop", {"ProfileToken": self.profile_token, "PanTilt": True,
                                  "Zoom": True})  # fmt: skip

    async def presets(self) -> list[PtzPreset]:
        """The camera's presets, in its order."""
        reply = await self._call("GetPresets", {"ProfileToken": self.profile_token})
        return [
            PtzPreset(token=str(p.token), name=None if p.Name is None else str(p.Name))
            for p in reply or ()
            if getattr(p, "token", None)
        ]

    async def goto_preset(self, token: str) -> None:
        """Move to a preset (HubError ``camera.ptz_preset_not_found`` if the camera has
        none by that token)."""
        request = {"ProfileToken": self.profile_token, "PresetToken": token}
        await self._call("GotoPreset", request)

    async def close(self) -> None:
        """Close the camera's HTTP sessions; safe to call twice."""
        camera, self._camera, self._ptz = self._camera, None, None
        if camera is not None:
            try:
                await asyncio.wait_for(camera.close(), self.timeouts.call)
            except Exception:
                log.debug("closing an ONVIF connection failed", exc_info=True)

    async def _call(self, operation: str, request: dict[str, Any]) -> Any:
        if self._ptz is None:
            raise HubError("camera.ptz_unavailable", "not connected to the camera", 503)
        ptz = self._ptz
        return await self._guard(getattr(ptz, operation)(request), self.timeouts.call, operation)

    async def _guard(self, work: Awaitable[T], seconds: float, what: str) -> T:
        """``work`` time-boxed, library errors translated to hub errors."""
        try:
            async with asyncio.timeout(seconds):
                return await work
        except HubError:
            raise
        except TimeoutError as err:
            raise HubError(
                "camera.ptz_unavailable", f"the camera did not answer {what} in {seconds:g} s", 503
            ) from err
        except Exception as err:
            raise translate(err, what) from err


def translate(err: Exception, what: str) -> HubError:
    """The hub error for a library error."""
    if isinstance(err, Fault):
        subcodes = " ".join(str(c) for c in err.subcodes or ())
        text = f"{err.message} {subcodes}"
        if NOT_AUTHORIZED in text:
            return _auth_failed()
        if any(c in subcodes for c in NO_TOKEN):
            return HubError("camera.ptz_preset_not_found", "the camera has no such preset", 404)
        if any(c in subcodes for c in NOT_SUPPORTED):
            return HubError("camera.ptz_unsupported", f"the camera does not support {what}", 409)
        return HubError("camera.ptz_failed", f"the camera refused {what}: {err.message}", 502)
    if isinstance(err, TransportError):
        if err.status_code in HTTP_AUTH_STATUSES:
            return _auth_failed()
        return HubError(
            "camera.ptz_failed", f"the camera answered {what} with HTTP {err.status_code}", 502
        )
    if isinstance(err, ONVIFAuthError):
        return _auth_failed()
    if isinstance(err, ONVIFTimeoutError):
        return HubError("camera.ptz_unavailable", f"the camera did not answer {what}", 503)
    if isinstance(err, aiohttp.ClientError | OSError):
        return HubError("camera.ptz_unavailable", f"the camera is not reachable: {err}", 503)
    if isinstance(err, ONVIFError):
        if "support service" in str(err):
            return HubError("camera.ptz_unsupported", "the camera has no PTZ service", 409)
        cause = err.__cause__
        if isinstance(cause, Exception) and not isinstance(cause, ONVIFError):
            return translate(cause, what)
        return HubError("camera.ptz_failed", f"ONVIF error {what}: {err}", 502)
    if isinstance(err, ZeepError | ValueError | AttributeError):
        return HubError("camera.ptz_failed", f"the camera's answer to {what} is invalid", 502)
    return HubError("camera.ptz_failed", f"{what} failed: {type(err).__name__}", 502)


def _auth_failed() -> HubError:
    return HubError(
        "camera.ptz_auth_failed", "the camera rejected the stored ONVIF credentials", 502
    )
