"""HTTP Digest authentication for SIP (RFC 2617, RFC 8760) as GB/T 28181 devices use it."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from protocols.sip.errors import SipParseError

NONCE_OK = "ok"
NONCE_STALE = "stale"
NONCE_INVALID = "invalid"
NONCE_REPLAY = "replay"

MAX_HEADER_LENGTH = 4096
MAX_PARAM_LENGTH = 1024
NC_LENGTH = 8
CNONCE_BYTES = 8
QOP_AUTH = "auth"
MS_PER_SECOND = 1000
NONCE_CLOCK_SKEW_MS = 5000
_NONCE_TIME_HEX = 12
_NONCE_SALT_HEX = 16
_NONCE_MAC_HEX = 32
_NONCE_LENGTH = _NONCE_TIME_HEX + _NONCE_SALT_HEX + _NONCE_MAC_HEX

_HASHES: dict[str, Callable[[bytes], hashlib._Hash]] = {
    "MD5": hashlib.md5,
    "SHA-256": hashlib.sha256,
}
_HEX_RE = re.compile(r"[0-9a-fA-F]+")
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")


def _split_algorithm(algorithm: str) -> tuple[str, bool]:
    """(hash name, is -sess) for a known algorithm, else SipParseError."""
    upper = algorithm.upper()
    session = upper.endswith("-SESS")
    base = upper.removesuffix("-SESS")
    if base not in _HASHES:
        raise SipParseError(f"unsupported digest algorithm {algorithm!r}")
    return base, session


def _hexdigest(algorithm: str, text: str) -> str:
    return _HASHES[algorithm](text.encode("utf-8")).hexdigest()


def _parse_auth_params(value: str) -> dict[str, str]:
    """Parse ``Digest a=b, c="d"`` into lower-cased keys; the scheme must be Digest."""
    if len(value) > MAX_HEADER_LENGTH:
        raise SipParseError("authentication header too long")
    text = value.strip()
    parts = text.split(None, 1)
    scheme = parts[0] if parts else ""
    rest = parts[1] if len(parts) > 1 else ""
    if scheme.lower() != "digest":
        raise SipParseError(f"authentication scheme {scheme[:20]!r} is not Digest")
    params: dict[str, str] = {}
    index = 0
    while index < len(rest):
        char = rest[index]
        if char in " \t,":
            index += 1
            continue
        match = _TOKEN_RE.match(rest, index)
        if match is None:
            raise SipParseError("malformed digest parameter list")
        name = match.group(0).lower()
        index = match.end()
        while index < len(rest) and rest[index] in " \t":
            index += 1
        if index >= len(rest) or rest[index] != "=":
            raise SipParseError(f"digest parameter {name!r} has no value")
        index += 1
        while index < len(rest) and rest[index] in " \t":
            index += 1
        if index < len(rest) and rest[index] == '"':
            chars: list[str] = []
            index += 1
            while True:
                if index >= len(rest):
                    raise SipParseError("unterminated quoted digest parameter")
                char = rest[index]
                if char == "\\" and index + 1 < len(rest):
                    chars.append(rest[index + 1])
                    index += 2
                    continue
                index += 1
                if char == '"':
                    break
                chars.append(char)
            param = "".join(chars)
        else:
            match = _TOKEN_RE.match(rest, index)
            if match is None:
                raise SipParseError(f"digest parameter {name!r} has an invalid value")
            param = match.group(0)
            index = match.end()
        if len(param) > MAX_PARAM_LENGTH:
            raise SipParseError(f"digest parameter {name!r} is too long")
        if name in params:
            raise SipParseError(f"digest parameter {name!r} appears twice")
        params[name] = param
    return params


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class DigestChallenge:
    """A WWW-Authenticate / Proxy-Authenticate Digest challenge."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: str | None = QOP_AUTH
    opaque: str | None = None
    stale: bool = False

    def header_value(self) -> str:
        """The header value, e.g. ``Digest realm="3402000000", nonce="…", algorithm=MD5``."""
        parts = [
            f"Digest realm={_quote(self.realm)}",
            f"nonce={_quote(self.nonce)}",
            f"algorithm={self.algorithm}",
        ]
        if self.qop is not None:
            parts.append(f"qop={_quote(self.qop)}")
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        if self.stale:
            parts.append("stale=TRUE")
        return ", ".join(parts)


def parse_challenge(value: str) -> DigestChallenge:
    """Parse a Digest challenge header value."""
    params = _parse_auth_params(value)
    for name in ("realm", "nonce"):
        if name not in params:
            raise SipParseError(f"digest challenge without {name}")
    algorithm = params.get("algorithm", "MD5")
    _split_algorithm(algorithm)
    return DigestChallenge(
        realm=params["realm"],
        nonce=params["nonce"],
        algorithm=algorithm,
        qop=params.get("qop"),
        opaque=params.get("opaque"),
        stale=params.get("stale", "").lower() == "true",
    )


@dataclass
class DigestCredentials:
    """An Authorization / Proxy-Authorization Digest response."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    qop: str | None = None
    nc: str | None = None
    cnonce: str | None = None
    opaque: str | None = None


def parse_credentials(value: str) -> DigestCredentials:
    """Parse Digest credentials; anything malformed raises SipParseError 400."""
    params = _parse_auth_params(value)
    for name in ("username", "realm", "nonce", "uri", "response"):
        if name not in params:
            raise SipParseError(f"digest credentials without {name}")
    algorithm = params.get("algorithm", "MD5")
    base, session = _split_algorithm(algorithm)
    response = params["response"]
    expected_length = _HASHES[base](b"").digest_size * 2
    if len(response) != expected_length or not _HEX_RE.fullmatch(response):
        raise SipParseError("digest response is not a hex digest of the right length")
    qop = params.get("qop")
    nc = params.get("nc")
    cnonce = params.get("cnonce")
    if qop is not None:
        if qop.lower() != QOP_AUTH:
            raise SipParseError(f"unsupported qop {qop!r}")
        if nc is None or cnonce is None:
            raise SipParseError("qop=auth needs nc and cnonce")
        if len(nc) != NC_LENGTH or not _HEX_RE.fullmatch(nc):
            raise SipParseError(f"nc {nc!r} is not 8 hex digits")
    if session and cnonce is None:
        raise SipParseError(f"algorithm {algorithm} needs a cnonce")
    return DigestCredentials(
        username=params["username"],
        realm=params["realm"],
        nonce=params["nonce"],
        uri=params["uri"],
        response=response,
        algorithm=algorithm,
        qop=qop.lower() if qop is not None else None,
        nc=nc,
        cnonce=cnonce,
        opaque=params.get("opaque"),
    )


def compute_response(
    algorithm: str,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
) -> str:
    """The request-digest of RFC 2617 3.2.2.1 (RFC 2069 form when qop is None)."""
    base, session = _split_algorithm(algorithm)
    ha1 = _hexdigest(base, f"{username}:{realm}:{password}")
    if session:
        ha1 = _hexdigest(base, f"{ha1}:{nonce}:{cnonce}")
    ha2 = _hexdigest(base, f"{method}:{uri}")
    if qop is None:
        return _hexdigest(base, f"{ha1}:{nonce}:{ha2}")
    return _hexdigest(base, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def verify_response(credentials: DigestCredentials, method: str, password: str) -> bool:
    """True when the credentials' response matches the password (constant-time compare)."""
    try:
        expected = compute_response(
            credentials.algorithm,
            credentials.username,
            credentials.realm,
            password,
            method,
            credentials.uri,
            credentials.nonce,
            credentials.qop,
            credentials.nc,
            credentials.cnonce,
        )
    except SipParseError:
        return False
    return hmac.compare_digest(expected.encode(), credentials.response.lower().encode())


def authorization_value(
    challenge: DigestChallenge,
    method: str,
    uri: str,
    username: str,
    password: str,
    nc: int = 1,
    cnonce: str | None = None,
) -> str:
    """An Authorization header value answering a challenge (client side)."""
    offered = [part.strip().lower() for part in (challenge.qop or "").split(",")]
    qop = QOP_AUTH if QOP_AUTH in offered else None
    nc_text = f"{nc:0{NC_LENGTH}x}"
    if cnonce is None and (qop is not None or challenge.algorithm.upper().endswith("-SESS")):
        cnonce = secrets.token_hex(CNONCE_BYTES)
    response = compute_response(
        challenge.algorithm,
        username,
        challenge.realm,
        password,
        method,
        uri,
        challenge.nonce,
        qop,
        nc_text if qop else None,
        cnonce,
    )
    parts = [
        f"Digest username={_quote(username)}",
        f"realm={_quote(challenge.realm)}",
        f"nonce={_quote(challenge.nonce)}",
        f"uri={_quote(uri)}",
        f"response={_quote(response)}",
        f"algorithm={challenge.algorithm}",
    ]
    if cnonce is not None:
        parts.append(f"cnonce={_quote(cnonce)}")
    if qop is not None:
        parts.extend((f"qop={qop}", f"nc={nc_text}"))
    if challenge.opaque is not None:
        parts.append(f"opaque={_quote(challenge.opaque)}")
    return ", ".join(parts)


class NonceBook:
    """Issues HMAC-signed, timestamped nonces and checks them for expiry and nc replay."""

    def __init__(self, secret: bytes, lifetime: float, max_tracked: int = 10000) -> None:
        self._secret = secret
        self._lifetime_ms = int(lifetime * MS_PER_SECOND)
        self._max_tracked = max_tracked
        # nonce -> highest nc seen; oldest dropped first to bound memory.
        self._seen: OrderedDict[str, int] = OrderedDict()

    def _mac(self, stamp_and_salt: str) -> str:
        digest = hmac.new(self._secret, stamp_and_salt.encode(), hashlib.sha256).hexdigest()
        return digest[:_NONCE_MAC_HEX]

    def issue(self, now: float) -> str:
        """A fresh nonce carrying its issue time and a MAC over it."""
        stamp = f"{max(0, int(now * MS_PER_SECOND)):0{_NONCE_TIME_HEX}x}"
        head = stamp + secrets.token_hex(_NONCE_SALT_HEX // 2)
        return head + self._mac(head)

    def check(self, credentials: DigestCredentials, now: float) -> str:
        """NONCE_OK, NONCE_STALE, NONCE_INVALID or NONCE_REPLAY for these credentials."""
        nonce = credentials.nonce
        if len(nonce) != _NONCE_LENGTH or not _HEX_RE.fullmatch(nonce):
            return NONCE_INVALID
        head, mac = nonce[:-_NONCE_MAC_HEX], nonce[-_NONCE_MAC_HEX:]
        if not hmac.compare_digest(self._mac(head).encode(), mac.lower().encode()):
            return NONCE_INVALID
        issued = int(head[:_NONCE_TIME_HEX], 16)
        now_ms = int(now * MS_PER_SECOND)
        if issued > now_ms + NONCE_CLOCK_SKEW_MS:
            return NONCE_INVALID
        if now_ms - issued > self._lifetime_ms:
            return NONCE_STALE
        if credentials.qop is None or credentials.nc is None:
            return NONCE_OK  # RFC 2069 style: no counter to check
        try:
            count = int(credentials.nc, 16)
        except ValueError:
            return NONCE_INVALID
        last = self._seen.get(nonce)
        if last is not None and count <= last:
            return NONCE_REPLAY
        self._seen[nonce] = count
        self._seen.move_to_end(nonce)
        while len(self._seen) > self._max_tracked:
            self._seen.popitem(last=False)
        return NONCE_OK
