"""GB/T 28181 southbound: devices, NVRs and lower platforms register to the hub; their
channels become cameras whose live media enters the shared fan-out."""

from adapters.gb28181.adapter import Gb28181Adapter

__all__ = ["Gb28181Adapter"]
