"""The fallback for cameras a browser cannot play (e.g. H.265), or when transcoding is
forced: one transcoder per camera, never per viewer.

It reads the camera's packets as one more consumer of the camera's relay, decodes them once
and encodes H.264 constrained baseline once (libx264, zerolatency) in its own worker thread,
and publishes the result to a second relay that every transcoded viewer of the camera shares.
Constrained baseline is playable by every H.264 profile a viewer can offer, so one encoding
serves them all.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

import av
import structlog
from av.video.frame import PictureType

from streams.h264 import parameter_sets, profile_level_id
from streams.relay import CameraRelay, RelayCounters, Viewer
from streams.source import MediaPacket, StreamInfo

log = structlog.get_logger(__name__)

ENCODER = "libx264"
OUTPUT_CODEC = "h264"
PIXEL_FORMAT = "yuv420p"
MIN_FPS, MAX_FPS = 1, 120


@dataclass(frozen=True, slots=True)
class TranscodeConfig:
    """How a transcoded stream is encoded."""

    bitrate: int = 2_000_000
    gop: int = 50
    preset: str = "ultrafast"
    threads: int = 1
    """Encoder threads (the bench measures one camera per core share, so 1 by default)."""
    fallback_fps: int = 25
    """Frame rate for rate control when the camera's cannot be told from two frames."""


class FrameCounters(Protocol):
    """Where decoded/encoded frames are counted (the StreamManager's MediaCounters)."""

    frames_decoded: int
    frames_encoded: int


@dataclass(frozen=True, slots=True)
class _Output:
    decoded: int
    packets: list[MediaPacket]


class _Codec:
    """Decoder and encoder; used only by the transcoder's single worker thread."""

    def __init__(self, source_codec: str, config: TranscodeConfig) -> None:
        self._config = config
        decoder = av.CodecContext.create(source_codec, "r")
        assert isinstance(decoder, av.VideoCodecContext)
        self._decoder = decoder
        self._encoder: av.VideoCodecContext | None = None
        self.size = (0, 0)
        """The size being encoded (written by the worker thread, read on the loop)."""
        self._held: av.VideoFrame | None = None  # the first frame, until the rate is known
        self.errors = 0

    def process(self, packet: MediaPacket) -> _Output:
        """Decode one access unit and encode what it yields."""
        encoded = av.Packet(packet.data)
        encoded.pts, encoded.dts = packet.pts, packet.dts
        encoded.time_base = packet.time_base
        try:
            frames = self._decoder.decode(encoded)
        except av.FFmpegError:
            self.errors += 1  # a damaged or orphaned delta frame; the next keyframe heals
            return _Output(0, [])
        out: list[MediaPacket] = []
        for frame in frames:
            assert isinstance(frame, av.VideoFrame)
            out.extend(self._encode(frame, packet.time_base))
        return _Output(len(frames), out)

    def _encode(self, frame: av.VideoFrame, time_base: Fraction) -> list[MediaPacket]:
        if self._encoder is None or self.size != (frame.width, frame.height):
            # x264's rate control needs the frame rate; the first two frames tell it.
            held, self._held = self._held, None
            if held is None or (held.width, held.height) != (frame.width, frame.height):
                self._held = frame
                return []
            fps = self._config.fallback_fps
            if frame.pts is not None and held.pts is not None and frame.pts > held.pts:
                measured = round(1 / ((frame.pts - held.pts) * time_base))
                fps = measured if MIN_FPS <= measured <= MAX_FPS else fps
            self._encoder = self._open_encoder(frame.width, frame.height, time_base, fps)
            return self._encode(held, time_base) + self._encode(frame, time_base)
        if frame.format.name != PIXEL_FORMAT:
            frame = frame.reformat(format=PIXEL_FORMAT)
        frame.pict_type = PictureType.NONE  # the encoder's GOP decides, not the camera's
        frame.time_base = time_base
        packets: list[MediaPacket] = []
        for packet in self._encoder.encode(frame):
            if packet.pts is None:
                continue
            dts = packet.dts if packet.dts is not None else packet.pts
            packets.append(
                MediaPacket(bytes(packet), packet.pts, dts, packet.is_keyframe, time_base)
            )
        return packets

    def _open_encoder(
        self, width: int, height: int, time_base: Fraction, fps: int
    ) -> av.VideoCodecContext:
        config = self._config
        encoder = av.CodecContext.create(ENCODER, "w")
        assert isinstance(encoder, av.VideoCodecContext)
        encoder.width, encoder.height, encoder.pix_fmt = width, height, PIXEL_FORMAT
        encoder.time_base = time_base
        encoder.framerate = Fraction(fps)
        encoder.bit_rate = config.bitrate
        encoder.gop_size = config.gop
        # No global header: x264 then repeats SPS/PPS in front of every keyframe, which is
        # what a late viewer (and aiortc's packetiser) needs.
        encoder.options = {
            "preset": config.preset,
            "tune": "zerolatency",
            "profile": "baseline",
            "bf": "0",
            "keyint_min": str(config.gop),
            "sc_threshold": "0",
            "threads": str(config.threads),
            "x264-params": f"keyint={config.gop}:scenecut=0:vbv-maxrate="
            f"{config.bitrate // 1000}:vbv-bufsize={config.bitrate // 1000}",
        }
        encoder.open()
        self.size = (width, height)
        return encoder


def stream_info(keyframe: MediaPacket, width: int, height: int) -> StreamInfo:
    """The transcoded stream's description, from its first keyframe's SPS/PPS."""
    psets = parameter_sets(keyframe.data)
    return StreamInfo(
        OUTPUT_CODEC, width, height, psets, profile_level_id(psets), keyframe.time_base
    )


class Transcoder:
    """One camera's decode-once/encode-once path feeding a relay its viewers share."""

    def __init__(
        self,
        source: CameraRelay,
        config: TranscodeConfig,
        counters: FrameCounters,
        relay_counters: RelayCounters,
        max_queue: int,
        gop_max_packets: int,
        gop_max_bytes: int,
        name: str = "",
    ) -> None:
        self.relay = CameraRelay(relay_counters, max_queue, gop_max_packets, gop_max_bytes)
        self._source = source
        self._config = config
        self._counters = counters
        self._input = source.attach()  # bounded: a slow transcoder skips to the next keyframe
        self._executor = concurrent.futures.ThreadPoolExecutor(1, f"transcode {name}")
        self._viewers: set[Viewer] = set()
        self._stopped = False
        self._log = log.bind(camera_id=name)

    @property
    def viewer_count(self) -> int:
        """Transcoded viewers attached now."""
        return len(self._viewers)

    def attach(self) -> Viewer:
        """A new transcoded viewer."""
        viewer = self.relay.attach()
        self._viewers.add(viewer)
        return viewer

    def owns(self, viewer: Viewer) -> bool:
        """Whether ``viewer`` is one of this transcoder's viewers."""
        return viewer in self._viewers

    def detach(self, viewer: Viewer) -> None:
        """Stop feeding a transcoded viewer."""
        self._viewers.discard(viewer)
        self.relay.detach(viewer)

    def stop(self) -> None:
        """Stop consuming the camera at once (its relay no longer counts this consumer)."""
        if self._stopped:
            return
        self._stopped = True
        self._source.detach(self._input)  # ends _run: the input viewer returns None
        self.relay.close()
        self._viewers.clear()

    async def join(self, timeout: float) -> bool:
        """Wait for the worker thread to finish its frame; False if it did not in time."""
        self.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)
        try:
            await asyncio.wait_for(asyncio.to_thread(self._executor.shutdown, wait=True), timeout)
        except TimeoutError:
            return False
        return True

    async def run(self) -> None:
        """Transcode until stopped or the camera's relay ends (run it as a task)."""
        info = await self._source.wait_info()
        codec = _Codec(info.codec, self._config)
        loop = asyncio.get_running_loop()
        self._log.info("transcoding started", source_codec=info.codec)
        try:
            while not self._stopped:
                packet = await self._input.get()
                if packet is None:
                    return
                output = await loop.run_in_executor(self._executor, codec.process, packet)
                self._counters.frames_decoded += output.decoded
                for out in output.packets:
                    self._counters.frames_encoded += 1
                    if self._stopped:
                        return
                    if out.keyframe:
                        described = stream_info(out, *codec.size)
                        current = self.relay.info
                        if current is None or current.parameter_sets != described.parameter_sets:
                            self.relay.set_info(described)  # first, or the camera's size changed
                    if self.relay.info is not None:
                        self.relay.publish(out)
        finally:
            self.stop()
            self._log.info("transcoding stopped", decode_errors=codec.errors)
