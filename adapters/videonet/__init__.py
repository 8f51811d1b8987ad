"""The governance video network (综治视联网): the hub's cameras cascaded to the network's
GB/T 28181 gateway (cascade.py), and consultation rooms calling its terminals over SIP."""

from adapters.videonet.cascade import CascadeAdapter, CascadeCounters
from adapters.videonet.directory import CameraDirectory

__all__ = ["CameraDirectory", "CascadeAdapter", "CascadeCounters"]
