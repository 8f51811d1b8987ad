"""Reassembly of concatenated inbound SMS: pure and bounded, the caller passes the time in."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from protocols.sms.encoding import DataCoding, InboundPart, decode_user_data

DEFAULT_MAX_PENDING = 1024
"""Incomplete messages held at once; the oldest is dropped to make room for a new one."""
DEFAULT_TTL_S = 600.0
"""An incomplete message whose first part is older than this is dropped."""

Key = tuple[str, int, int]
"""(source address, reference, total parts)."""


@dataclass(slots=True)
class _Pending:
    first_seen: float
    parts: dict[int, InboundPart] = field(default_factory=dict)


@dataclass(slots=True)
class ReassemblyStats:
    """Counters for the adapter's metrics."""

    completed: int = 0
    expired: int = 0
    evicted: int = 0
    duplicates: int = 0


class Reassembler:
    """Joins the parts of long inbound texts, keyed by (source, reference, total)."""

    def __init__(
        self, *, max_pending: int = DEFAULT_MAX_PENDING, ttl_s: float = DEFAULT_TTL_S
    ) -> None:
        if max_pending < 1 or ttl_s <= 0:
            raise ValueError("max_pending must be at least 1 and ttl_s positive")
        self._max_pending = max_pending
        self._ttl_s = ttl_s
        self._pending: OrderedDict[Key, _Pending] = OrderedDict()
        self.stats = ReassemblyStats()

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, source: str, part: InboundPart, *, now: float) -> str | None:
        """Add a decoded part; the full text once every part is in, else None.

        A part without a concatenation header (or a 1-of-1 part) is returned at once. A
        repeated part is ignored (the first copy wins).
        """
        self.expire(now=now)
        concat = part.concat
        if concat is None or concat.total == 1:
            return part.text
        key = (source, concat.ref, concat.total)
        pending = self._pending.get(key)
        if pending is None:
            while len(self._pending) >= self._max_pending:
                self._pending.popitem(last=False)
                self.stats.evicted += 1
            pending = self._pending[key] = _Pending(now)
        if concat.seq in pending.parts:
            self.stats.duplicates += 1
            return None
        pending.parts[concat.seq] = part
        if len(pending.parts) < concat.total:
            return None
        del self._pending[key]
        self.stats.completed += 1
        return _join([pending.parts[seq] for seq in range(1, concat.total + 1)])

    def expire(self, *, now: float) -> int:
        """Drop incomplete messages older than the TTL; returns how many were dropped."""
        dropped = 0
        # Insertion order is first-seen order, so the oldest are at the front.
        while self._pending:
            key, pending = next(iter(self._pending.items()))
            if now - pending.first_seen <= self._ttl_s:
                break
            del self._pending[key]
            dropped += 1
        self.stats.expired += dropped
        return dropped


def _join(parts: list[InboundPart]) -> str:
    """Join parts; UCS-2 parts are joined as bytes first so a pair split by the sender heals."""
    codings = {p.data_coding for p in parts}
    if codings == {DataCoding.UCS2}:
        return decode_user_data(b"".join(p.payload for p in parts), DataCoding.UCS2)
    return "".join(p.text for p in parts)
