"""MQTT packet framing for the receive fast path: find whole packets in a byte stream and
decode QoS 0/1 PUBLISH packets without paho.

paho reads a packet with three ``recv`` calls and decodes each PUBLISH into an
``MQTTMessage`` with a properties object and a topic-filter walk; at thousands of pings a
second that was most of the adapter's time. Here one ``recv`` feeds hundreds of packets and
a PUBLISH costs a few slices. Everything that is not a QoS 0/1 PUBLISH still goes to paho.
"""

from __future__ import annotations

from dataclasses import dataclass

PUBLISH = 0x30
PUBACK = 0x40
TYPE_MASK = 0xF0
MAX_LENGTH_BYTES = 4
"""The remaining-length field has at most four bytes (MQTT 3.1.1 §2.2.3, MQTT 5 §1.5.5)."""


class MalformedPacket(ValueError):
    """The broker sent bytes that are not an MQTT packet."""


@dataclass(frozen=True, slots=True)
class Frame:
    """Where one whole packet lies in a buffer: ``buf[start:end]`` is the packet, its fixed
    header byte is ``header`` and its variable header begins at ``body``."""

    header: int
    start: int
    body: int
    end: int


def next_frame(buf: bytes | bytearray, pos: int) -> Frame | None:
    """The packet starting at ``pos``, or None when the buffer does not hold all of it yet."""
    size = len(buf)
    index = pos + 1
    length = 0
    shift = 0
    while True:
        if index >= size:
            return None
        byte = buf[index]
        index += 1
        length |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
        if index - pos > MAX_LENGTH_BYTES:
            raise MalformedPacket("remaining length longer than four bytes")
    end = index + length
    if end > size:
        return None
    return Frame(buf[pos], pos, index, end)


def is_fast_publish(header: int) -> bool:
    """A PUBLISH at QoS 0 or 1: the packets the fast path decodes (QoS 2 goes to paho)."""
    return header & TYPE_MASK == PUBLISH and (header >> 1) & 3 < 2


def decode_publish(buf: bytes | bytearray, frame: Frame, *, v5: bool) -> tuple[str, bytes, int]:
    """Topic, payload and packet id (0 at QoS 0) of a QoS 0/1 PUBLISH frame.

    MQTT 5 properties are skipped: the hub uses none of them, and the broker sends no topic
    aliases because the client's CONNECT allows none.
    """
    qos = (frame.header >> 1) & 3
    index = frame.body
    end = frame.end
    if index + 2 > end:
        raise MalformedPacket("PUBLISH too short for its topic length")
    topic_end = index + 2 + int.from_bytes(buf[index : index + 2], "big")
    if topic_end > end:
        raise MalformedPacket("PUBLISH topic runs past the packet")
    try:
        topic = bytes(buf[index + 2 : topic_end]).decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedPacket("PUBLISH topic is not UTF-8") from None
    index = topic_end
    mid = 0
    if qos:
        if index + 2 > end:
            raise MalformedPacket("PUBLISH too short for its packet id")
        mid = int.from_bytes(buf[index : index + 2], "big")
        index += 2
    if v5:
        length = 0
        shift = 0
        while True:
            if index >= end:
                raise MalformedPacket("PUBLISH properties run past the packet")
            byte = buf[index]
            index += 1
            length |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
            if shift > 7 * (MAX_LENGTH_BYTES - 1):
                raise MalformedPacket("PUBLISH property length longer than four bytes")
        index += length
        if index > end:
            raise MalformedPacket("PUBLISH properties run past the packet")
    return topic, bytes(buf[index:end]), mid


def puback(mid: int) -> bytes:
    """A PUBACK for packet id ``mid`` (in MQTT 5, success with no properties may be sent in
    this short form, §3.4.2.1)."""
    return bytes((PUBACK, 2, mid >> 8, mid & 0xFF))
