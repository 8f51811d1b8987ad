"""SIP messages (RFC 3261 7, 18.3): parsing datagrams and streams, encoding, responses."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from protocols.sip.addresses import (
    NameAddr,
    SipUri,
    Via,
    parse_name_addr,
    parse_uri,
    parse_via,
    response_address,
)
from protocols.sip.errors import STATUS_TOO_LARGE, STATUS_VERSION, SipParseError
from protocols.sip.headers import TOKEN_RE, Headers
from protocols.sip.status import (
    STATUS_MAX,
    STATUS_MIN,
    default_reason,
    is_provisional,
    is_success,
)

# Addresses and headers live in their own modules but are part of this module's API.
__all__ = [
    "MAX_MESSAGE",
    "Headers",
    "NameAddr",
    "SipFramer",
    "SipMessage",
    "SipParseError",
    "SipRequest",
    "SipResponse",
    "SipUri",
    "Via",
    "default_reason",
    "encode",
    "is_provisional",
    "is_success",
    "make_response",
    "new_branch",
    "new_call_id",
    "new_tag",
    "parse_message",
    "parse_name_addr",
    "parse_uri",
    "parse_via",
    "response_address",
]

MAX_MESSAGE = 65535
MAX_HEADERS = 128
MAX_LINE = 8192
MAX_CSEQ = 2**31 - 1
MAX_LENGTH_DIGITS = 10
MAGIC_COOKIE = "z9hG4bK"
SIP_VERSION = "SIP/2.0"
BRANCH_RANDOM_BYTES = 10
TAG_RANDOM_BYTES = 6
CALL_ID_RANDOM_BYTES = 12

MANDATORY_HEADERS = ("Via", "From", "To", "Call-ID", "CSeq")


_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_T = TypeVar("_T")
_VERSION_RE = re.compile(r"SIP/\d+\.\d+", re.I)
_REQUEST_LINE_RE = re.compile(rb"^[A-Za-z0-9\-.!%*_+`'~]+ \S+ SIP/", re.I)
_STATUS_LINE_RE = re.compile(rb"^SIP/\d", re.I)
# The blank line ending the header section; bare LF line ends are tolerated.
_HEADER_END_RE = re.compile(rb"\r?\n\r?\n")
_HEADER_END_MAX = 4  # longest possible match, to resume a search safely
_STREAM_LENGTH_RE = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*)", re.I | re.M)


def parse_cseq(value: str) -> tuple[int, str]:
    """Parse a CSeq value ``number METHOD``."""
    parts = value.split()
    if len(parts) != 2 or not TOKEN_RE.fullmatch(parts[1]):
        raise SipParseError(f"invalid CSeq {value[:80]!r}")
    number, method = parts
    if not (number.isascii() and number.isdigit()) or len(number) > MAX_LENGTH_DIGITS:
        raise SipParseError(f"invalid CSeq number {number!r}")
    if int(number) > MAX_CSEQ:
        raise SipParseError(f"CSeq number {number} exceeds 2**31-1")
    return int(number), method


class _MessageFields:
    """Typed views over the mandatory header fields shared by requests and responses."""

    headers: Headers

    def _required(self, name: str) -> str:
        value = self.headers.get(name)
        if value is None:
            raise SipParseError(f"missing {name} header")
        return value

    def _parsed(self, name: str, parse: Callable[[str], _T]) -> _T:
        """``parse`` of the header's value, kept while the value stays the same (the hot
        path reads Via, From and CSeq several times per message)."""
        raw = self._required(name)
        memo: dict[str, tuple[str, Any]] = self.__dict__.setdefault("_memo", {})
        hit = memo.get(name)
        if hit is not None and hit[0] == raw:
            return cast(_T, hit[1])
        value = parse(raw)
        memo[name] = (raw, value)
        return value

    @property
    def call_id(self) -> str:
        """The Call-ID."""
        return self._required("Call-ID").strip()

    @property
    def cseq(self) -> tuple[int, str]:
        """The CSeq number and method."""
        return self._parsed("CSeq", parse_cseq)

    @property
    def top_via(self) -> Via:
        """The first Via value."""
        return self._parsed("Via", parse_via)

    @property
    def branch(self) -> str | None:
        """The top Via's branch parameter."""
        return self.top_via.branch

    @property
    def from_addr(self) -> NameAddr:
        """The From header."""
        return self._parsed("From", parse_name_addr)

    @property
    def to_addr(self) -> NameAddr:
        """The To header."""
        return self._parsed("To", parse_name_addr)

    @property
    def from_tag(self) -> str | None:
        """The From tag."""
        return self.from_addr.tag

    @property
    def to_tag(self) -> str | None:
        """The To tag."""
        return self.to_addr.tag

    @property
    def content_type(self) -> str | None:
        """The media type, lower-cased, parameters stripped."""
        value = self.headers.get("Content-Type")
        if value is None:
            return None
        return value.split(";", 1)[0].strip().lower() or None


@dataclass
class SipRequest(_MessageFields):
    """A SIP request."""

    method: str
    uri: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""


@dataclass
class SipResponse(_MessageFields):
    """A SIP response."""

    status: int
    reason: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""


SipMessage = SipRequest | SipResponse


def _header_end(data: bytes | bytearray, start: int) -> tuple[int, int]:
    """(end of the header section, start of the body), or (-1, -1) when incomplete."""
    match = _HEADER_END_RE.search(data, start)
    return (match.start(), match.end()) if match else (-1, -1)


def _skip_newlines(data: bytes | bytearray) -> int:
    index = 0
    while index < len(data) and data[index] in b"\r\n":
        index += 1
    return index


def _parse_header_lines(lines: list[str]) -> Headers:
    pairs: list[list[str]] = []
    for line in lines:
        if len(line) > MAX_LINE:
            raise SipParseError(f"header line longer than {MAX_LINE} characters")
        if not line:
            continue
        if line[0] in " \t":
            # Obsolete line folding (RFC 3261 7.3.1): still accepted from old devices.
            if not pairs:
                raise SipParseError("continuation line before any header")
            pairs[-1][1] = f"{pairs[-1][1]} {line.strip()}".strip()
            continue
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not TOKEN_RE.fullmatch(name):
            raise SipParseError(f"malformed header line {line[:80]!r}")
        pairs.append([name, value.strip()])
        if len(pairs) > MAX_HEADERS:
            raise SipParseError(f"more than {MAX_HEADERS} header fields")
    return Headers((name, value) for name, value in pairs)


def _parse_start_line(line: str, headers: Headers) -> SipMessage:
    if line.upper().startswith("SIP/"):
        parts = line.split(" ", 2)
        _check_version(parts[0])
        if len(parts) < 2 or not (parts[1].isascii() and parts[1].isdigit()):
            raise SipParseError(f"malformed status line {line[:80]!r}")
        status = int(parts[1])
        if len(parts[1]) != 3 or not STATUS_MIN <= status <= STATUS_MAX:
            raise SipParseError(f"status code {parts[1]!r} out of range")
        return SipResponse(status, parts[2].strip() if len(parts) > 2 else "", headers)
    parts = line.split(" ")
    if len(parts) != 3 or not TOKEN_RE.fullmatch(parts[0]) or not parts[1]:
        raise SipParseError(f"malformed request line {line[:80]!r}")
    _check_version(parts[2])
    parse_uri(parts[1])
    return SipRequest(parts[0], parts[1], headers)


def _check_version(text: str) -> None:
    if text.upper() == SIP_VERSION:
        return
    if _VERSION_RE.fullmatch(text):
        raise SipParseError(f"SIP version {text!r} is not supported", STATUS_VERSION)
    raise SipParseError(f"{text[:20]!r} is not a SIP version")


def _validate(message: SipMessage) -> None:
    for name in MANDATORY_HEADERS:
        if name not in message.headers:
            raise SipParseError(f"missing mandatory {name} header")
    if not message.call_id:
        raise SipParseError("empty Call-ID")
    _number, method = message.cseq
    if isinstance(message, SipRequest) and method != message.method:
        raise SipParseError(f"CSeq method {method} does not match request method {message.method}")
    for value in message.headers.get_all("Via"):
        parse_via(value)
    message.from_addr  # noqa: B018 - parsed for validation only
    message.to_addr  # noqa: B018


def _content_length(headers: Headers) -> int | None:
    values = {value.strip() for value in headers.get_all("Content-Length")}
    if not values:
        return None
    if len(values) > 1:
        raise SipParseError("conflicting Content-Length headers")
    text = values.pop()
    if not (text.isascii() and text.isdigit()) or len(text) > MAX_LENGTH_DIGITS:
        raise SipParseError(f"invalid Content-Length {text[:20]!r}")
    return int(text)


def parse_message(data: bytes, max_size: int = MAX_MESSAGE) -> SipMessage:
    """Parse one SIP message (a UDP datagram or one framed stream message)."""
    if len(data) > max_size:
        raise SipParseError(
            f"message of {len(data)} bytes exceeds the {max_size}-byte limit", STATUS_TOO_LARGE
        )
    start = _skip_newlines(data)
    end, body_start = _header_end(data, start)
    if end < 0:
        # Lenient: a datagram without the blank line is treated as headers with no body.
        end = body_start = len(data)
    try:
        head = data[start:end].decode("utf-8")
    except UnicodeDecodeError as err:
        raise SipParseError("the header section is not valid UTF-8") from err
    lines = head.replace("\r\n", "\n").split("\n")
    if _CONTROL_RE.search(head.replace("\r\n", "").replace("\n", "")):
        raise SipParseError("control character in the header section")
    if not lines[0]:
        raise SipParseError("empty message")
    if len(lines[0]) > MAX_LINE:
        raise SipParseError(f"start line longer than {MAX_LINE} characters")
    headers = _parse_header_lines(lines[1:])
    message = _parse_start_line(lines[0], headers)
    _validate(message)
    body = data[body_start:]
    length = _content_length(headers)
    if length is not None:
        if len(body) < length:
            raise SipParseError(f"body has {len(body)} bytes, Content-Length says {length}")
        body = body[:length]
    message.body = bytes(body)
    return message


class SipFramer:
    """Splits a TCP/TLS byte stream into SIP messages (RFC 3261 18.3)."""

    def __init__(self, max_size: int = MAX_MESSAGE) -> None:
        self._max_size = max_size
        self._buffer = bytearray()
        self._error: SipParseError | None = None
        # Where the header-end search resumes, so byte-by-byte input stays linear.
        self._scanned = 0

    def feed(self, data: bytes) -> list[SipMessage]:
        """Add received bytes; return every complete message. Raises SipParseError for a
        broken stream (the caller closes the connection); later calls raise it again."""
        if self._error is not None:
            raise self._error
        self._buffer += data
        messages: list[SipMessage] = []
        try:
            while (message := self._next()) is not None:
                messages.append(message)
        except SipParseError as err:
            self._error = err
            self._buffer.clear()
            raise
        return messages

    def _next(self) -> SipMessage | None:
        # RFC 5626 keepalives (CRLF pairs) may sit between messages.
        skipped = _skip_newlines(self._buffer)
        if skipped:
            del self._buffer[:skipped]
            self._scanned = 0
        buffer = self._buffer
        if not buffer:
            return None
        newline = buffer.find(b"\n")
        if newline < 0:
            if len(buffer) > min(MAX_LINE, self._max_size):
                raise SipParseError("start line too long", STATUS_TOO_LARGE)
            return None
        first = bytes(buffer[:newline]).rstrip(b"\r")
        if not (_REQUEST_LINE_RE.match(first) or _STATUS_LINE_RE.match(first)):
            raise SipParseError("stream data that is not a SIP start line")
        end, body_start = _header_end(buffer, max(0, self._scanned - _HEADER_END_MAX))
        if end < 0:
            self._scanned = len(buffer)
            if len(buffer) > self._max_size:
                raise SipParseError("header section exceeds the size limit", STATUS_TOO_LARGE)
            return None
        match = _STREAM_LENGTH_RE.search(bytes(buffer[:end]))
        if match is None:
            raise SipParseError("Content-Length is mandatory on stream transports")
        text = match.group(1).strip()
        if not text.isdigit() or len(text) > MAX_LENGTH_DIGITS:
            raise SipParseError(f"invalid Content-Length {text[:20]!r}")
        total = body_start + int(text)
        if total > self._max_size:
            raise SipParseError("message exceeds the size limit", STATUS_TOO_LARGE)
        if len(buffer) < total:
            return None
        chunk = bytes(buffer[:total])
        del buffer[:total]
        self._scanned = 0
        return parse_message(chunk, self._max_size)


def encode(message: SipMessage) -> bytes:
    """Serialise a message; Content-Length always states the body's length. Raises
    ValueError when a value contains a line break (header injection)."""
    if isinstance(message, SipRequest):
        start = f"{message.method} {message.uri} {SIP_VERSION}"
    else:
        start = f"{SIP_VERSION} {message.status} {message.reason}"
    lines = [start]
    lines.extend(
        f"{name}: {value}" for name, value in message.headers.items() if name != "Content-Length"
    )
    lines.append(f"Content-Length: {len(message.body)}")
    for line in lines:
        # A CR or LF from a caller-supplied value would smuggle in extra headers.
        if "\r" in line or "\n" in line:
            raise ValueError(f"line break inside a header or start line: {line[:80]!r}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + message.body


def make_response(
    request: SipRequest, status: int, reason: str | None = None, *, to_tag: str | None = None
) -> SipResponse:
    """A response to a request with Via, From, To, Call-ID and CSeq copied (RFC 3261 8.2.6)."""
    headers = Headers()
    for name, value in request.headers.items():
        if name == "Via":
            headers.add(name, value)
    for name in ("From", "To", "Call-ID", "CSeq"):
        found = request.headers.get(name)
        if found is None:
            raise SipParseError(f"request lacks the {name} header")
        value = found
        if name == "To" and to_tag is not None and parse_name_addr(value).tag is None:
            value = f"{value};tag={to_tag}"
        headers.add(name, value)
    return SipResponse(status, reason if reason is not None else default_reason(status), headers)


def make_request(
    method: str,
    uri: str,
    *,
    via: Via,
    from_uri: str,
    to_uri: str,
    call_id: str,
    cseq: int,
    from_tag: str | None = None,
    extra: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
) -> SipRequest:
    """A request outside a dialog (RFC 3261 8.1.1): Via, From (a fresh tag unless given),
    To, Call-ID, CSeq, Max-Forwards 70, then ``extra`` headers in order."""
    headers = Headers(
        [
            ("Via", str(via)),
            ("From", f"<{from_uri}>;tag={from_tag or new_tag()}"),
            ("To", f"<{to_uri}>"),
            ("Call-ID", call_id),
            ("CSeq", f"{cseq} {method}"),
            ("Max-Forwards", "70"),
            *extra,
        ]
    )
    return SipRequest(method, uri, headers, body)


def new_branch() -> str:
    """A fresh RFC 3261 branch (magic cookie prefix)."""
    return MAGIC_COOKIE + secrets.token_hex(BRANCH_RANDOM_BYTES)


def new_tag() -> str:
    """A fresh From/To tag."""
    return secrets.token_hex(TAG_RANDOM_BYTES)


def new_call_id(host: str) -> str:
    """A fresh Call-ID ``random@host``."""
    return f"{secrets.token_hex(CALL_ID_RANDOM_BYTES)}@{host}"
