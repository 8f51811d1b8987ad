"""MPEG-2 Program Stream (ISO/IEC 13818-1 2.5) demuxer for GB/T 28181 media.

The RTP payloads of a GB28181 stream, concatenated, form a PS byte stream; packs and PES
packets need not line up with RTP packets. Video PES payloads are gathered into Annex-B
access units, split where a PES with a new PTS opens the next picture.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protocols.gb28181.nal import (
    guess_codec,
    is_keyframe,
    is_vcl,
    nal_types_h264,
    nal_types_h265,
    opens_access_unit,
)

PS_START = b"\x00\x00\x01"
PACK_HEADER = 0xBA
SYSTEM_HEADER = 0xBB
PROGRAM_STREAM_MAP = 0xBC
PROGRAM_END = 0xB9
PADDING_STREAM = 0xBE
LOWEST_PS_ID = 0xB9  # start codes below this are elementary-stream data, not PS level
AUDIO_IDS = range(0xC0, 0xE0)
VIDEO_IDS = range(0xE0, 0xF0)
PACK_MPEG2_LENGTH = 14
PACK_MPEG1_LENGTH = 12
PACK_MPEG2_MARK = 0x40  # '01' in the top bits after the pack start code
PACK_MPEG1_MARK = 0x20  # '0010'
PACK_STUFFING_MASK = 0x07
PES_PREFIX = 6  # start code, stream id, PES_packet_length
PES_HEADER = 9  # ... plus the two flag bytes and PES_header_data_length
PES_MPEG2_MARK = 0x80  # '10' at the start of the optional PES header
TIMESTAMP_LENGTH = 5
PTS_FLAG = 0x80
DTS_FLAG = 0x40
PSM_FIXED = 10  # up to and including program_stream_info_length
PSM_ENTRY = 4
PSM_CRC = 4
STREAM_TYPES = {
    0x1B: "h264",
    0x24: "h265",
    0x10: "mpeg4",
    0x90: "g711a",
    0x91: "g711u",
    0x0F: "aac",
}
VIDEO_CODECS = frozenset({"h264", "h265", "mpeg4"})
NAL_CODECS = frozenset({"h264", "h265"})
DEFAULT_MAX_ACCESS_UNIT = 4 * 1024 * 1024
DEFAULT_MAX_BUFFER = 8 * 1024 * 1024
_START_CODE_TAIL = 3  # a start code may straddle two PES payloads


class PsError(ValueError):
    """The program stream cannot be demuxed."""


@dataclass(frozen=True, slots=True)
class AccessUnit:
    """One video access unit (Annex-B) or one audio PES payload, with 90 kHz times."""

    kind: str
    codec: str
    data: bytes
    pts: int | None
    dts: int | None
    keyframe: bool


@dataclass
class _VideoState:
    codec: str = "unknown"
    data: bytearray = field(default_factory=bytearray)
    pts: int | None = None
    dts: int | None = None
    discarding: bool = False
    has_vcl: bool = False
    scan_pos: int = 0
    pending: list[tuple[int, int | None, int | None]] = field(default_factory=list)


def _timestamp(buf: bytearray, off: int) -> int:
    """A 33-bit PTS/DTS from its 5-byte marker-bit encoding."""
    return (
        ((buf[off] >> 1) & 0x07) << 30
        | buf[off + 1] << 22
        | (buf[off + 2] >> 1) << 15
        | buf[off + 3] << 7
        | buf[off + 4] >> 1
    )


class PsDemuxer:
    """Feeds PS bytes in any chunking and returns complete access units."""

    def __init__(
        self,
        max_access_unit: int = DEFAULT_MAX_ACCESS_UNIT,
        max_buffer: int = DEFAULT_MAX_BUFFER,
    ) -> None:
        self.max_access_unit = max_access_unit
        self.max_buffer = max_buffer
        self.counters: dict[str, int] = dict.fromkeys(
            (
                "packs",
                "pes_packets",
                "psm",
                "resyncs",
                "garbage_bytes",
                "bad_pes",
                "oversize_dropped",
                "buffer_overflows",
                "skipped_packets",
            ),
            0,
        )
        self.stream_codecs: dict[int, str] = {}
        self._buf = bytearray()
        self._video: dict[int, _VideoState] = {}

    @property
    def resyncs(self) -> int:
        """Times garbage was skipped to find the next start code."""
        return self.counters["resyncs"]

    @property
    def oversize_dropped(self) -> int:
        """Access units dropped for exceeding max_access_unit."""
        return self.counters["oversize_dropped"]

    @property
    def pes_packets(self) -> int:
        """Audio and video PES packets seen."""
        return self.counters["pes_packets"]

    def feed(self, data: bytes) -> list[AccessUnit]:
        """Add PS bytes; return the access units completed by them."""
        out: list[AccessUnit] = []
        self._buf += data
        consumed = self._parse(out)
        del self._buf[:consumed]
        if len(self._buf) > self.max_buffer:
            # only an unbounded (length 0) video PES can grow this far; give it up
            self.counters["buffer_overflows"] += 1
            self._buf.clear()
        return out

    def flush(self) -> list[AccessUnit]:
        """Emit the access units still being gathered; drop any partial packet."""
        out: list[AccessUnit] = []
        for stream_id, state in self._video.items():
            self._emit_video(stream_id, state, out)
        self._buf.clear()
        return out

    def _next_ps_start(self, pos: int) -> int:
        buf = self._buf
        found = buf.find(PS_START, pos)
        while found >= 0 and found + 3 < len(buf) and buf[found + 3] < LOWEST_PS_ID:
            found = buf.find(PS_START, found + 3)
        return found

    def _resync(self, pos: int) -> int:
        """Skip garbage from pos to the next PS-level start code; return the new position."""
        self.counters["resyncs"] += 1
        found = self._next_ps_start(pos + 1)
        if found < 0:
            # keep a possible partial start code at the very end
            found = max(pos + 1, len(self._buf) - _START_CODE_TAIL)
        self.counters["garbage_bytes"] += found - pos
        return found

    def _parse(self, out: list[AccessUnit]) -> int:
        buf = self._buf
        pos = 0
        total = len(buf)
        while total - pos >= 4:
            if (
                buf[pos] != 0
                or buf[pos + 1] != 0
                or buf[pos + 2] != 1
                or buf[pos + 3] < LOWEST_PS_ID
            ):
                pos = self._resync(pos)
                continue
            stream_id = buf[pos + 3]
            if stream_id == PROGRAM_END:
                pos += 4
                continue
            if stream_id == PACK_HEADER:
                end = self._pack_end(pos)
                if end is None:
                    break
                if end < 0:
                    pos = self._resync(pos)
                    continue
                self.counters["packs"] += 1
                pos = end
                continue
            if total - pos < PES_PREFIX:
                break
            length = (buf[pos + 4] << 8) | buf[pos + 5]
            if length == 0 and stream_id in VIDEO_IDS:
                # unbounded video PES: its payload runs to the next PS-level start code
                found = self._next_ps_start(pos + PES_PREFIX)
                if found < 0 or found + 3 >= total:
                    break
                end = found
            else:
                end = pos + PES_PREFIX + length
                if end > total:
                    break
            self._packet(stream_id, pos, end, out)
            pos = end
        return pos

    def _pack_end(self, pos: int) -> int | None:
        """End of the pack header at pos; None if incomplete, -1 if malformed."""
        buf = self._buf
        if len(buf) - pos < PACK_MPEG1_LENGTH:
            return None
        mark = buf[pos + 4]
        if mark & 0xC0 == PACK_MPEG2_MARK:
            if len(buf) - pos < PACK_MPEG2_LENGTH:
                return None
            end = pos + PACK_MPEG2_LENGTH + (buf[pos + 13] & PACK_STUFFING_MASK)
            return end if end <= len(buf) else None
        if mark & 0xF0 == PACK_MPEG1_MARK:
            return pos + PACK_MPEG1_LENGTH
        return -1

    def _packet(self, stream_id: int, pos: int, end: int, out: list[AccessUnit]) -> None:
        if stream_id == PROGRAM_STREAM_MAP:
            self.counters["psm"] += 1
            self._parse_psm(pos, end)
            return
        video = stream_id in VIDEO_IDS
        if not video and stream_id not in AUDIO_IDS:
            # system header, padding, private streams, ECM/EMM, directory ...
            self.counters["skipped_packets"] += 1
            return
        buf = self._buf
        if end - pos < PES_HEADER or buf[pos + 6] & 0xC0 != PES_MPEG2_MARK:
            self.counters["bad_pes"] += 1
            return
        flags = buf[pos + 7]
        payload_start = pos + PES_HEADER + buf[pos + 8]
        if payload_start > end:
            self.counters["bad_pes"] += 1
            return
        pts: int | None = None
        dts: int | None = None
        header = pos + PES_HEADER
        if flags & PTS_FLAG and header + TIMESTAMP_LENGTH <= payload_start:
            pts = _timestamp(buf, header)
            dts = pts  # no DTS field means DTS equals PTS (13818-1 2.4.3.7)
            if flags & DTS_FLAG and header + 2 * TIMESTAMP_LENGTH <= payload_start:
                dts = _timestamp(buf, header + TIMESTAMP_LENGTH)
        self.counters["pes_packets"] += 1
        payload = bytes(buf[payload_start:end])
        if video:
            self._video_payload(stream_id, payload, pts, dts, out)
        elif payload:
            codec = self.stream_codecs.get(stream_id, "unknown")
            out.append(AccessUnit("audio", codec, payload, pts, dts, False))

    def _parse_psm(self, pos: int, end: int) -> None:
        buf = self._buf
        if end - pos < PSM_FIXED + 2:
            self.counters["bad_pes"] += 1
            return
        info_length = (buf[pos + 8] << 8) | buf[pos + 9]
        map_at = pos + PSM_FIXED + info_length
        if map_at + 2 > end:
            self.counters["bad_pes"] += 1
            return
        map_end = min(map_at + 2 + ((buf[map_at] << 8) | buf[map_at + 1]), end - PSM_CRC)
        entry = map_at + 2
        while entry + PSM_ENTRY <= map_end:
            stream_type, es_id = buf[entry], buf[entry + 1]
            self.stream_codecs[es_id] = STREAM_TYPES.get(stream_type, "unknown")
            state = self._video.get(es_id)
            if state is not None:
                state.codec = self.stream_codecs[es_id]
            entry += PSM_ENTRY + ((buf[entry + 2] << 8) | buf[entry + 3])

    def _video_payload(
        self,
        stream_id: int,
        payload: bytes,
        pts: int | None,
        dts: int | None,
        out: list[AccessUnit],
    ) -> None:
        state = self._video.get(stream_id)
        if state is None:
            state = self._video[stream_id] = _VideoState(
                codec=self.stream_codecs.get(stream_id, "unknown")
            )
        if state.codec not in VIDEO_CODECS:
            state.codec = guess_codec(payload)
        if state.codec in NAL_CODECS:
            self._nal_payload(stream_id, state, payload, pts, dts, out)
            return
        # without NAL syntax the only boundary we know is a PES carrying a new PTS
        if pts is not None and pts != state.pts and state.data:
            self._emit_video(stream_id, state, out)
        if pts is not None:
            state.pts, state.dts = pts, dts
        state.data += payload
        self._check_size(state)

    def _nal_payload(
        self,
        stream_id: int,
        state: _VideoState,
        payload: bytes,
        pts: int | None,
        dts: int | None,
        out: list[AccessUnit],
    ) -> None:
        """Split Annex-B data into access units (H.264 7.4.1.2.3, H.265 7.4.2.4.4)."""
        data = state.data
        if pts is not None:
            state.pending.append((len(data), pts, dts))
        if not data:
            self._take_timestamps(state)
        data += payload
        codec = state.codec
        pos = data.find(PS_START, state.scan_pos)
        while pos >= 0:
            header = pos + 3
            opens = opens_access_unit(codec, data, header)
            if opens is None:
                break
            if opens and state.has_vcl:
                cut = pos - 1 if pos > 0 and data[pos - 1] == 0 else pos
                self._cut(stream_id, state, cut, out)
                header -= cut
            if is_vcl(codec, data, header):
                state.has_vcl = True
            pos = data.find(PS_START, header)
        state.scan_pos = pos if pos >= 0 else max(0, len(data) - _START_CODE_TAIL)
        self._check_size(state)

    def _cut(self, stream_id: int, state: _VideoState, cut: int, out: list[AccessUnit]) -> None:
        """Emit data[:cut] as an access unit and start the next one at cut."""
        tail = bytes(state.data[cut:])
        del state.data[cut:]
        self._emit_video(stream_id, state, out)
        state.data += tail
        state.has_vcl = False
        state.pending = [(off - cut, p, d) for off, p, d in state.pending]
        self._take_timestamps(state)

    @staticmethod
    def _take_timestamps(state: _VideoState) -> None:
        """Give the access unit starting at offset 0 the PTS of the PES it starts in.

        13818-1 2.4.3.7: a PES PTS belongs to the first access unit starting in that PES;
        an access unit that starts later in the same PES has no PTS of its own.
        """
        chosen: tuple[int, int | None, int | None] | None = None
        keep: list[tuple[int, int | None, int | None]] = []
        for entry in state.pending:
            # the start code may straddle the PES boundary by up to 4 bytes
            if entry[0] <= _START_CODE_TAIL + 1:
                chosen = entry
            else:
                keep.append(entry)
        state.pending = keep
        if chosen is None:
            state.pts = state.dts = None
        else:
            state.pts, state.dts = chosen[1], chosen[2]

    def _check_size(self, state: _VideoState) -> None:
        if len(state.data) > self.max_access_unit:
            # never hold an oversize unit: drop what we have and the rest of it
            self.counters["oversize_dropped"] += 1
            state.data.clear()
            state.discarding = True
            state.scan_pos = 0
            state.pending.clear()

    def _emit_video(self, stream_id: int, state: _VideoState, out: list[AccessUnit]) -> None:
        del stream_id  # one state per stream id; kept for symmetry with audio
        if state.discarding or not state.data.strip(b"\x00"):
            state.data.clear()
            state.discarding = False
            return
        data = bytes(state.data)
        state.data.clear()
        if state.codec not in VIDEO_CODECS:
            state.codec = guess_codec(data)
        out.append(
            AccessUnit(
                "video", state.codec, data, state.pts, state.dts, is_keyframe(state.codec, data)
            )
        )


__all__ = ["AccessUnit", "PsDemuxer", "PsError", "nal_types_h264", "nal_types_h265"]
