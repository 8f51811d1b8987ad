"""GB/T 28181 SSRC allocation: the 10-digit decimal SSRC carried in the SDP "y=" line."""

from __future__ import annotations

SSRC_DIGITS = 10
DOMAIN_DIGITS = 10
SEQUENCE_SPACE = 10_000  # digits 7-10
LIVE_PREFIX = "0"
PLAYBACK_PREFIX = "1"
# digits 2-6 of the SSRC are characters 4-8 of the SIP domain id (GB/T 28181-2016 annex G)
_DOMAIN_SLICE = slice(3, 8)
MAX_SSRC_VALUE = 0xFFFFFFFF


class SsrcExhausted(RuntimeError):
    """All 10000 sequence numbers of a live or playback SSRC space are in use."""


def ssrc_value(ssrc: str) -> int:
    """The 32-bit RTP SSRC for a GB28181 SSRC text: its decimal value."""
    if len(ssrc) != SSRC_DIGITS or not ssrc.isascii() or not ssrc.isdigit():
        raise ValueError(f"SSRC must be {SSRC_DIGITS} decimal digits, got {ssrc!r}")
    value = int(ssrc)
    if value > MAX_SSRC_VALUE:
        raise ValueError(f"SSRC {ssrc} does not fit in 32 bits")
    return value


def ssrc_text(value: int) -> str:
    """The GB28181 text form of a 32-bit RTP SSRC: zero-padded to 10 digits."""
    if not 0 <= value <= MAX_SSRC_VALUE:
        raise ValueError(f"SSRC value {value} out of 32-bit range")
    return f"{value:0{SSRC_DIGITS}d}"


class SsrcAllocator:
    """Hands out unique live/playback SSRCs for one SIP domain."""

    def __init__(self, domain_id: str) -> None:
        if len(domain_id) != DOMAIN_DIGITS or not domain_id.isascii() or not domain_id.isdigit():
            raise ValueError(f"SIP domain id must be {DOMAIN_DIGITS} digits, got {domain_id!r}")
        self.domain_id = domain_id
        self._middle = domain_id[_DOMAIN_SLICE]
        self._used: set[str] = set()
        self._next = {LIVE_PREFIX: 0, PLAYBACK_PREFIX: 0}

    def allocate(self, playback: bool = False) -> str:
        """Return an unused SSRC; the sequence wraps and skips SSRCs still in use."""
        prefix = PLAYBACK_PREFIX if playback else LIVE_PREFIX
        start = self._next[prefix]
        for step in range(SEQUENCE_SPACE):
            sequence = (start + step) % SEQUENCE_SPACE
            ssrc = f"{prefix}{self._middle}{sequence:04d}"
            if ssrc not in self._used:
                self._used.add(ssrc)
                self._next[prefix] = (sequence + 1) % SEQUENCE_SPACE
                return ssrc
        kind = "playback" if playback else "live"
        raise SsrcExhausted(f"all {SEQUENCE_SPACE} {kind} SSRCs of domain {self.domain_id} in use")

    def release(self, ssrc: str) -> None:
        """Give an SSRC back; releasing an unknown one is a no-op."""
        self._used.discard(ssrc)

    def in_use(self, ssrc: str) -> bool:
        """Whether this allocator handed out the SSRC and it was not released."""
        return ssrc in self._used

    def __len__(self) -> int:
        return len(self._used)
