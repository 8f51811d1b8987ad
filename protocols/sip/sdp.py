"""SDP (RFC 4566) with the GB/T 28181 additions ``y=`` (SSRC) and ``f=`` (media format)."""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_SDP = 8192
MAX_PORT = 65535
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
DEFAULT_DIRECTION = "sendrecv"
_ORIGIN_FIELDS = 6
_MEDIA_MIN_FIELDS = 3
_CONNECTION_FIELDS = 3
# Lines we understand or knowingly skip; other letters are ignored as RFC 4566 5 allows.
_SKIPPED = frozenset("iepbrzk")

Attribute = tuple[str, str | None]


class SdpError(ValueError):
    """An SDP body that cannot be used."""


def _parse_attribute(value: str) -> Attribute:
    name, colon, rest = value.partition(":")
    if not name or any(char.isspace() for char in name):
        raise SdpError(f"invalid attribute {value[:40]!r}")
    return name, rest if colon else None


def _format_attributes(attributes: list[Attribute]) -> list[str]:
    return [f"a={name}" if value is None else f"a={name}:{value}" for name, value in attributes]


def _connection_line(address: str) -> str:
    family = "IP6" if ":" in address else "IP4"
    return f"c=IN {family} {address}"


def _parse_connection(value: str) -> str:
    parts = value.split()
    if len(parts) != _CONNECTION_FIELDS or parts[0] != "IN":
        raise SdpError(f"invalid connection line {value[:60]!r}")
    # Keep the address only: a multicast TTL/count suffix is not used by GB28181 peers.
    address = parts[2].split("/", 1)[0]
    if not address:
        raise SdpError("empty connection address")
    return address


def _is_number(text: str) -> bool:
    # str.isdigit alone admits characters such as superscripts that int() refuses.
    return text.isascii() and text.isdigit()


def _parse_port(text: str) -> int:
    port_text = text.split("/", 1)[0]
    if not _is_number(port_text) or len(port_text) > len(str(MAX_PORT)):
        raise SdpError(f"invalid media port {text!r}")
    port = int(port_text)
    if port > MAX_PORT:
        raise SdpError(f"media port {port} out of range")
    return port


@dataclass
class MediaDescription:
    """One ``m=`` section."""

    kind: str
    port: int
    proto: str
    formats: list[str]
    attributes: list[Attribute] = field(default_factory=list)
    connection: str | None = None

    def attribute(self, name: str) -> str | None:
        """The value of the first attribute of this name ('' for a flag), or None."""
        for attr_name, value in self.attributes:
            if attr_name == name:
                return "" if value is None else value
        return None

    def rtpmap(self) -> dict[int, tuple[str, int]]:
        """Payload type → (encoding name as written, clock rate); malformed lines skipped."""
        result: dict[int, tuple[str, int]] = {}
        for name, value in self.attributes:
            if name != "rtpmap" or value is None:
                continue
            payload, _, encoding = value.strip().partition(" ")
            parts = encoding.strip().split("/")
            if len(parts) < 2 or not (_is_number(payload) and _is_number(parts[1])):
                continue
            result[int(payload)] = (parts[0], int(parts[1]))
        return result

    @property
    def direction(self) -> str:
        """sendrecv, sendonly, recvonly or inactive (default sendrecv)."""
        for name, _value in self.attributes:
            if name in DIRECTIONS:
                return name
        return DEFAULT_DIRECTION

    @property
    def setup(self) -> str | None:
        """The RFC 4145 a=setup role (active/passive/actpass) for TCP media."""
        value = self.attribute("setup")
        return value.strip().lower() if value else None

    @property
    def tcp(self) -> bool:
        """True for RTP over TCP (``TCP/RTP/AVP``)."""
        return self.proto.upper().startswith("TCP/")

    def lines(self) -> list[str]:
        """The section's SDP lines."""
        formats = "".join(f" {fmt}" for fmt in self.formats)
        lines = [f"m={self.kind} {self.port} {self.proto}{formats}"]
        if self.connection is not None:
            lines.append(_connection_line(self.connection))
        lines.extend(_format_attributes(self.attributes))
        return lines


@dataclass
class SessionDescription:
    """A session description, GB28181 fields included."""

    origin_user: str
    session_id: str
    session_version: str
    origin_address: str
    session_name: str
    connection: str | None
    media: list[MediaDescription]
    uri: str | None = None
    time: str = "0 0"
    ssrc: str | None = None
    format_line: str | None = None
    attributes: list[Attribute] = field(default_factory=list)

    def encode(self) -> bytes:
        """Serialise with CRLF line ends (y= and f= after the media, as devices expect)."""
        return str(self).encode("utf-8")

    def __str__(self) -> str:
        family = "IP6" if ":" in self.origin_address else "IP4"
        lines = [
            "v=0",
            f"o={self.origin_user} {self.session_id} {self.session_version} IN {family} "
            f"{self.origin_address}",
            f"s={self.session_name}",
        ]
        if self.uri is not None:
            lines.append(f"u={self.uri}")
        if self.connection is not None:
            lines.append(_connection_line(self.connection))
        lines.append(f"t={self.time}")
        lines.extend(_format_attributes(self.attributes))
        for media in self.media:
            lines.extend(media.lines())
        if self.ssrc is not None:
            lines.append(f"y={self.ssrc}")
        if self.format_line is not None:
            lines.append(f"f={self.format_line}")
        return "\r\n".join(lines) + "\r\n"


def _decode(data: bytes | str, max_size: int) -> str:
    if isinstance(data, str):
        if len(data) > max_size:
            raise SdpError(f"SDP longer than {max_size} characters")
        return data
    if len(data) > max_size:
        raise SdpError(f"SDP larger than {max_size} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        # GB28181 devices write s=/i= text in GB2312; GB18030 is its superset.
        return data.decode("gb18030")
    except UnicodeDecodeError as err:
        raise SdpError("SDP is neither UTF-8 nor GB18030 text") from err


def parse_sdp(data: bytes | str, max_size: int = MAX_SDP) -> SessionDescription:
    """Parse an SDP body; raises SdpError (only) for anything unusable."""
    text = _decode(data, max_size)
    lines = [line.rstrip("\r").strip() for line in text.split("\n")]
    lines = [line for line in lines if line]
    if not lines or lines[0] != "v=0":
        raise SdpError("SDP must start with v=0")
    origin: list[str] | None = None
    session_name: str | None = None
    values: dict[str, str] = {}
    connection: str | None = None
    attributes: list[Attribute] = []
    media: list[MediaDescription] = []
    for line in lines[1:]:
        if len(line) < 2 or line[1] != "=" or not ("a" <= line[0] <= "z"):
            raise SdpError(f"malformed SDP line {line[:40]!r}")
        kind, value = line[0], line[2:].strip()
        if any(ord(char) < ord(" ") and char != "\t" for char in value):
            raise SdpError("control character in SDP")
        if kind == "v":
            raise SdpError("repeated v= line")
        if kind == "o":
            origin = value.split()
            if len(origin) != _ORIGIN_FIELDS or origin[3] != "IN":
                raise SdpError(f"invalid origin line {value[:60]!r}")
        elif kind == "s":
            session_name = value
        elif kind in "tuyf":
            # GB28181 puts y= and f= after m=: they are session-level wherever they appear.
            values.setdefault(kind, value)
        elif kind == "c":
            address = _parse_connection(value)
            if media:
                media[-1].connection = address
            else:
                connection = address
        elif kind == "a":
            (media[-1].attributes if media else attributes).append(_parse_attribute(value))
        elif kind == "m":
            parts = value.split()
            if len(parts) < _MEDIA_MIN_FIELDS:
                raise SdpError(f"invalid media line {value[:60]!r}")
            media.append(MediaDescription(parts[0], _parse_port(parts[1]), parts[2], parts[3:]))
        # Any other letter (i, e, p, b, r, z, k and unknown ones) is ignored.
    if origin is None:
        raise SdpError("SDP without an o= line")
    if session_name is None:
        raise SdpError("SDP without an s= line")
    return SessionDescription(
        origin_user=origin[0],
        session_id=origin[1],
        session_version=origin[2],
        origin_address=origin[5],
        session_name=session_name,
        connection=connection,
        media=media,
        uri=values.get("u"),
        time=values.get("t", "0 0"),
        ssrc=values.get("y"),
        format_line=values.get("f"),
        attributes=attributes,
    )
