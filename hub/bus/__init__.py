"""The bus: per-channel publication streams (epoch + offset, history) shared by hub nodes."""

from hub.bus.base import Bus, BusUnavailable, HistoryResult, Publication, StreamPosition

__all__ = ["Bus", "BusUnavailable", "HistoryResult", "Publication", "StreamPosition"]
