"""Trickle ICE SDP fragments (RFC 8840, ``application/trickle-ice-sdpfrag``) as WHIP/WHEP
PATCH bodies carry them: pure parsing, text in, candidates out."""

from __future__ import annotations

from dataclasses import dataclass

MAX_CANDIDATES = 64


class SdpFragError(ValueError):
    """A fragment that is not usable."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """One ICE candidate and the media section it belongs to."""

    candidate: str
    """The attribute value, ``candidate:…`` (as RTCIceCandidateInit.candidate)."""
    sdp_mid: str | None
    sdp_mline_index: int | None

    def as_init(self) -> dict[str, object]:
        """The browser's RTCIceCandidateInit shape."""
        return {
            "candidate": self.candidate,
            "sdpMid": self.sdp_mid,
            "sdpMLineIndex": self.sdp_mline_index,
        }


def parse_sdpfrag(text: str) -> list[Candidate]:
    """The ``a=candidate:`` lines of a fragment, each with the ``a=mid`` and index of the
    media section it follows (None before any). Raises SdpFragError for a fragment with
    control characters or too many candidates."""
    candidates: list[Candidate] = []
    mid: str | None = None
    index: int | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if not line.isprintable():
            raise SdpFragError("the fragment holds control characters")
        if line.startswith("m="):
            index = 0 if index is None else index + 1
            mid = None
        elif line.startswith("a=mid:"):
            mid = line[len("a=mid:") :]
        elif line.startswith("a=candidate:"):
            candidates.append(Candidate(line[2:], mid, index))
            if len(candidates) > MAX_CANDIDATES:
                raise SdpFragError(f"more than {MAX_CANDIDATES} candidates")
    return candidates
