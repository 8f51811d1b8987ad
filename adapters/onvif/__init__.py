"""ONVIF cameras: PTZ (continuous move, stop, presets) through onvif-zeep-async."""

from adapters.onvif.client import OnvifEndpoint, PtzClient, PtzPreset, PtzTimeouts
from adapters.onvif.pool import PtzPool

__all__ = ["OnvifEndpoint", "PtzClient", "PtzPool", "PtzPreset", "PtzTimeouts"]
