"""Participant process of the video-call benchmark: ``room_peers.py`` with one more receive
slot per participant (for the SIP terminal) and the terminal's frames counted apart.

    python -m tests.bench.videonet_peers URL CLIP

Same commands and answers as :mod:`tests.bench.room_peers`. Every participant offers
``SLOTS`` = 4 receive slots: the hub fills the first three with the room's other WebRTC
participants (they join before the terminal is called) and the fourth with the terminal
when it joins. ``SNAP`` answers count the fourth slot's frames as ``terminal_audio`` and
``terminal_video`` (not in ``received_*``, so the WebRTC delivery stays comparable with and
without the terminal) and give ``min_slot_terminal``, the fewest video frames any
participant got from the terminal (warm-up).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any

from tests.bench import room_peers
from tests.bench.procutil import die_with_parent, raise_nofile_limit

OTHERS = len(room_peers.USERS) - 1
"""The other WebRTC participants of a room: the slots before the terminal's."""
SLOTS = OTHERS + 1


class TerminalPeers(room_peers.Peers):
    """:class:`room_peers.Peers` whose snapshot tells the terminal's slot apart."""

    def snapshot(self) -> dict[str, Any]:
        snap = super().snapshot()
        everyone = [p for room in self.rooms for p in room.participants]
        for kind in ("audio", "video"):
            extra = sum(sum(p.received[kind][OTHERS:]) for p in everyone)
            snap[f"received_{kind}"] -= extra
            snap[f"terminal_{kind}"] = extra
        snap["min_slot_terminal"] = min(
            (sum(p.received["video"][OTHERS:]) for p in everyone), default=0
        )
        return snap


# room_peers builds its participants and its Peers from these module globals at run time.
room_peers.SLOTS = SLOTS
room_peers.Peers = TerminalPeers  # type: ignore[misc]


if __name__ == "__main__":
    die_with_parent()
    raise_nofile_limit()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("clip")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(room_peers.main(parser.parse_args()))
