"""SIP header fields: an ordered, case-insensitive, multi-valued collection."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator

# RFC 3261 7.3.3 compact forms plus the common extensions' ones.
COMPACT_FORMS: dict[str, str] = {
    "v": "Via",
    "f": "From",
    "t": "To",
    "i": "Call-ID",
    "m": "Contact",
    "l": "Content-Length",
    "c": "Content-Type",
    "k": "Supported",
    "s": "Subject",
    "e": "Content-Encoding",
    "o": "Event",
    "r": "Refer-To",
    "u": "Allow-Events",
    "x": "Session-Expires",
}

_KNOWN_NAMES = (
    "Via",
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Contact",
    "Content-Length",
    "Content-Type",
    "Supported",
    "Subject",
    "Content-Encoding",
    "Event",
    "Refer-To",
    "Allow-Events",
    "Session-Expires",
    "Max-Forwards",
    "Route",
    "Record-Route",
    "Allow",
    "Require",
    "Proxy-Require",
    "Unsupported",
    "WWW-Authenticate",
    "Authorization",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Expires",
    "User-Agent",
    "Server",
    "Date",
    "Timestamp",
    "Min-Expires",
    "Retry-After",
    "Subscription-State",
    "Accept",
    "Warning",
    "Reason",
    "MIME-Version",
)
_CANONICAL: dict[str, str] = {name.lower(): name for name in _KNOWN_NAMES}

# Headers whose grammar is a comma-separated list (RFC 3261 7.3.1). Auth headers and Date
# contain commas that are not list separators, so they are deliberately absent.
LIST_HEADERS = frozenset(
    name.lower()
    for name in (
        "Via",
        "Contact",
        "Route",
        "Record-Route",
        "Allow",
        "Supported",
        "Require",
        "Proxy-Require",
        "Unsupported",
    )
)

TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")  # use with fullmatch


@functools.lru_cache(maxsize=1024)
def canonical_name(name: str) -> str:
    """The canonical spelling of a header name (compact forms expanded)."""
    stripped = name.strip()
    lower = stripped.lower()
    if lower in COMPACT_FORMS:
        return COMPACT_FORMS[lower]
    return _CANONICAL.get(lower, stripped)


def split_outside(text: str, separator: str) -> list[str]:
    """Split on a separator that is not inside double quotes or <...> brackets."""
    if separator not in text:
        return [text]
    if '"' not in text and "<" not in text:
        return text.split(separator)  # nothing can hide a separator: the common case
    parts: list[str] = []
    current: list[str] = []
    in_quotes = False
    escaped = False
    depth = 0
    for char in text:
        if in_quotes:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_quotes = False
        elif char == '"':
            in_quotes = True
        elif char == "<":
            depth += 1
        elif char == ">" and depth:
            depth -= 1
        elif char == separator and not depth:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _values(name: str, value: str) -> list[str]:
    if name.lower() not in LIST_HEADERS:
        return [value]
    if "," not in value:
        stripped = value.strip()
        return [stripped] if stripped else []
    return [part.strip() for part in split_outside(value, ",") if part.strip()]


@functools.lru_cache(maxsize=1024)
def _key(canonical: str) -> str:
    return canonical.lower()


class Headers:
    """Ordered, case-insensitive, multi-valued SIP header fields."""

    __slots__ = ("_items", "_keys")

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = []
        self._keys: list[str] = []
        """The lower-cased canonical name of each item (lookups compare these)."""
        for name, value in pairs:
            self.add(name, value)

    def add(self, name: str, value: str) -> None:
        """Append one header field."""
        canonical = canonical_name(name)
        self._items.append((canonical, value))
        self._keys.append(_key(canonical))

    def set(self, name: str, value: str) -> None:
        """Replace every field of this name with one value (at the first one's place)."""
        key = canonical_name(name).lower()
        result: list[tuple[str, str]] = []
        placed = False
        for item in self._items:
            if item[0].lower() == key:
                if not placed:
                    result.append((item[0], value))  # keep the spelling already in use
                    placed = True
            else:
                result.append(item)
        if not placed:
            result.append((canonical_name(name), value))
        self._items = result
        self._keys = [_key(item[0]) for item in result]

    def remove(self, name: str) -> None:
        """Remove every field of this name."""
        key = _key(canonical_name(name))
        self._items = [item for item in self._items if _key(item[0]) != key]
        self._keys = [k for k in self._keys if k != key]

    def get(self, name: str) -> str | None:
        """The first value (the first list element for list headers), or None."""
        key = _key(canonical_name(name))
        for index, item_key in enumerate(self._keys):
            if item_key == key:
                item_name, value = self._items[index]
                values = _values(item_name, value)
                if values:
                    return values[0]
        return None

    def get_all(self, name: str) -> list[str]:
        """Every value in order, comma-joined lists split for the list headers."""
        key = _key(canonical_name(name))
        result: list[str] = []
        for index, item_key in enumerate(self._keys):
            if item_key == key:
                item_name, value = self._items[index]
                result.extend(_values(item_name, value))
        return result

    def items(self) -> list[tuple[str, str]]:
        """Every field as (name, raw value), in order."""
        return list(self._items)

    def copy(self) -> Headers:
        """An independent copy."""
        clone = Headers()
        clone._items = list(self._items)
        clone._keys = list(self._keys)
        return clone

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return _key(canonical_name(name)) in self._keys

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._items == other._items

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"
