"""SIP URIs, name-addr values and Via headers (RFC 3261 19.1, 20.10, 20.42; RFC 3581)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from protocols.sip.errors import STATUS_UNSUPPORTED_SCHEME, SipParseError
from protocols.sip.headers import TOKEN_RE, split_outside

DEFAULT_PORT = 5060
MAX_PORT = 65535
MAX_PORT_DIGITS = 5
RELIABLE_TRANSPORTS = frozenset({"TCP", "TLS", "SCTP", "WS", "WSS"})
SIP_SCHEMES = frozenset({"sip", "sips"})

_HOST_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-_]*|\[[0-9A-Fa-f:.]+\]")
# Characters never valid unescaped in a SIP URI's user part or parameters.
_FORBIDDEN_URI_CHARS = re.compile(r"[\s<>\"\\{}|^]")
_VIA_RE = re.compile(r"^SIP\s*/\s*2\.0\s*/\s*([A-Za-z0-9\-.!%*_+`'~]+)\s+(\S.*)$", re.I | re.S)
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")


def parse_params(text: str, what: str) -> dict[str, str | None]:
    """Parse ``;name=value;flag`` parameters (text after the first ';'); names lower-cased."""
    params: dict[str, str | None] = {}
    for raw in split_outside(text, ";"):
        part = raw.strip()
        if not part:
            continue  # tolerate stray ';' as many devices emit a trailing one
        name, sep, value = part.partition("=")
        name = name.strip()
        if not TOKEN_RE.fullmatch(name):
            raise SipParseError(f"invalid parameter name {name!r} in {what}")
        value = value.strip()
        if sep and not value:
            raise SipParseError(f"parameter {name!r} in {what} has an empty value")
        params[name.lower()] = value if sep else None
    return params


def format_params(params: dict[str, str | None]) -> str:
    """Serialise parameters as ``;name=value;flag``."""
    return "".join(
        f";{name}" if value is None else f";{name}={value}" for name, value in params.items()
    )


def parse_port(text: str, what: str) -> int:
    """A decimal port number 0..65535."""
    text = text.strip()
    if not text.isdigit() or not text.isascii() or len(text) > MAX_PORT_DIGITS:
        raise SipParseError(f"invalid port {text!r} in {what}")
    port = int(text)
    if port > MAX_PORT:
        raise SipParseError(f"port {port} out of range in {what}")
    return port


def split_host_port(text: str, what: str) -> tuple[str, int | None]:
    """Split ``host[:port]`` (IPv6 references in brackets)."""
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise SipParseError(f"unterminated IPv6 reference in {what}")
        host, rest = text[: end + 1], text[end + 1 :].strip()
    else:
        host, colon, port_text = text.partition(":")
        host = host.strip()
        rest = colon + port_text
    if not _HOST_RE.fullmatch(host):
        raise SipParseError(f"invalid host {host!r} in {what}")
    if not rest:
        return host, None
    if not rest.startswith(":"):
        raise SipParseError(f"unexpected text after the host in {what}")
    return host, parse_port(rest[1:], what)


def _format_host_port(host: str, port: int | None) -> str:
    return host if port is None else f"{host}:{port}"


@dataclass
class SipUri:
    """A sip: or sips: URI."""

    scheme: str
    user: str | None
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        user = "" if self.user is None else f"{self.user}@"
        text = f"{self.scheme}:{user}{_format_host_port(self.host, self.port)}"
        text += format_params(self.params)
        if self.headers:
            text += "?" + "&".join(f"{name}={value}" for name, value in self.headers.items())
        return text


def parse_uri(value: str) -> SipUri:
    """Parse a sip:/sips: URI; other schemes raise SipParseError 416."""
    text = value.strip()
    scheme, colon, rest = text.partition(":")
    if not colon or not _SCHEME_RE.fullmatch(scheme):
        raise SipParseError(f"{text!r} is not a URI")
    scheme = scheme.lower()
    if scheme not in SIP_SCHEMES:
        raise SipParseError(f"unsupported URI scheme {scheme!r}", STATUS_UNSUPPORTED_SCHEME)
    if _FORBIDDEN_URI_CHARS.search(rest):
        raise SipParseError(f"invalid character in URI {text!r}")
    user: str | None = None
    if "@" in rest:
        user, _, rest = rest.partition("@")
        if not user:
            raise SipParseError(f"empty user part in URI {text!r}")
    rest, question, header_text = rest.partition("?")
    hostport, semicolon, param_text = rest.partition(";")
    host, port = split_host_port(hostport, f"URI {text!r}")
    params = parse_params(param_text, f"URI {text!r}") if semicolon else {}
    headers: dict[str, str] = {}
    if question:
        for pair in header_text.split("&"):
            if not pair:
                continue
            name, _, header_value = pair.partition("=")
            if not name:
                raise SipParseError(f"empty header name in URI {text!r}")
            headers[name] = header_value
    return SipUri(scheme, user, host, port, params, headers)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _read_quoted(text: str) -> tuple[str, str]:
    """Unquote a leading quoted string; returns (content, remaining text)."""
    content: list[str] = []
    index = 1
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            content.append(text[index + 1])
            index += 2
            continue
        if char == '"':
            return "".join(content), text[index + 1 :]
        content.append(char)
        index += 1
    raise SipParseError("unterminated quoted string")


@dataclass
class NameAddr:
    """A From/To/Contact/Route style value: optional display name, URI, header params."""

    display: str | None
    uri: SipUri
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def tag(self) -> str | None:
        """The tag parameter, if any."""
        return self.params.get("tag")

    def __str__(self) -> str:
        display = "" if self.display is None else _quote(self.display) + " "
        return f"{display}<{self.uri}>{format_params(self.params)}"


def parse_name_addr(value: str) -> NameAddr:
    """Parse ``"Name" <sip:..>;tag=x``, ``Name <sip:..>`` or bare ``sip:..;tag=x``."""
    text = value.strip()
    if not text:
        raise SipParseError("empty address")
    display: str | None = None
    if text.startswith('"'):
        display, rest = _read_quoted(text)
        rest = rest.lstrip()
        if not rest.startswith("<"):
            raise SipParseError(f"quoted display name without <URI> in {text!r}")
    elif "<" in text:
        lt = text.index("<")
        display = text[:lt].strip() or None
        if display is not None and any(char in display for char in '">'):
            raise SipParseError(f"invalid display name in {text!r}")
        rest = text[lt:]
    else:
        # RFC 3261 20.10: without <>, parameters after the URI belong to the header.
        uri_text, semicolon, param_text = text.partition(";")
        if "," in uri_text or "?" in uri_text:
            raise SipParseError(f"address {text!r} needs <> around its URI")
        params = parse_params(param_text, f"address {text!r}") if semicolon else {}
        return NameAddr(None, parse_uri(uri_text), params)
    gt = rest.find(">")
    if gt < 0:
        raise SipParseError(f"missing '>' in address {text!r}")
    uri = parse_uri(rest[1:gt])
    tail = rest[gt + 1 :].strip()
    if tail and not tail.startswith(";"):
        raise SipParseError(f"unexpected text after '>' in address {text!r}")
    params = parse_params(tail[1:], f"address {text!r}") if tail else {}
    return NameAddr(display, uri, params)


@dataclass
class Via:
    """One Via header value."""

    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def branch(self) -> str | None:
        """The branch parameter, if any."""
        return self.params.get("branch")

    @property
    def sent_by(self) -> str:
        """``host[:port]`` as written."""
        return _format_host_port(self.host, self.port)

    def __str__(self) -> str:
        return f"SIP/2.0/{self.transport} {self.sent_by}{format_params(self.params)}"


def parse_via(value: str) -> Via:
    """Parse one Via value such as ``SIP/2.0/UDP 192.168.1.10:5060;rport;branch=z9hG4bK1``."""
    match = _VIA_RE.match(value.strip())
    if not match:
        raise SipParseError(f"invalid Via {value.strip()!r}")
    transport, rest = match.group(1).upper(), match.group(2)
    parts = split_outside(rest, ";")
    host, port = split_host_port(parts[0], "Via")
    params = parse_params(";".join(parts[1:]), "Via")
    return Via(transport, host, port, params)


def response_address(via: Via, source: tuple[str, int]) -> tuple[str, int]:
    """Where to send a response (RFC 3261 18.2.2 with RFC 3581 rport)."""
    if via.transport in RELIABLE_TRANSPORTS:
        return source  # the response goes back over the connection the request came on
    maddr = via.params.get("maddr")
    if maddr:
        return maddr, via.port or DEFAULT_PORT
    host = via.params.get("received") or source[0]
    if "rport" in via.params:
        rport = via.params["rport"]
        if rport and rport.isascii() and rport.isdigit() and int(rport) <= MAX_PORT:
            return host, int(rport)
        return host, source[1]
    return host, via.port or DEFAULT_PORT
