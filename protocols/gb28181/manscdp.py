"""MANSCDP (GB/T 28181 annex A) XML bodies: tolerant parsing, catalog items, assembly.

Builders live in :mod:`protocols.gb28181.manscdp_build` and are re-exported here.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from protocols.gb28181.manscdp_errors import ManscdpError

DEFAULT_MAX_SIZE = 256 * 1024
MAX_CATALOG_SUM = 100_000
ROOTS = frozenset({"Query", "Response", "Notify", "Control"})
LIST_TAGS = ("DeviceList", "RecordList", "AlarmList", "PresetList")
ITEM_TAG = "Item"
GB_CHARSETS = frozenset({"GB2312", "GBK", "GB18030", "GB_2312-80", "CP936", "EUC-CN"})
UTF8_NAMES = frozenset({"UTF-8", "UTF8"})
ASCII_NAMES = frozenset({"US-ASCII", "ASCII", "ISO-8859-1", "LATIN1", "ISO8859-1"})
# the codec that decodes everything GB2312 and GBK declare, and more
GB_CODEC = "gb18030"
MAX_DEVICE_ID = 64

_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*?\?>", re.IGNORECASE)
_ENCODING_ATTR = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""", re.IGNORECASE)
_FORBIDDEN = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_DEVICE_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")
_DIGITS = re.compile(r"[0-9]+")
_TRAILING_JUNK = b"\x00 \t\r\n"
_UTF8_BOM = b"\xef\xbb\xbf"


@dataclass
class ManscdpMessage:
    """A parsed MANSCDP body: root, command, serial number, device and the rest."""

    root: str
    cmd_type: str
    sn: int
    device_id: str
    fields: dict[str, str] = field(default_factory=dict)
    items: list[dict[str, str]] = field(default_factory=list)
    sum_num: int | None = None
    encoding: str = "GB2312"


@dataclass
class CatalogItem:
    """One channel or organisation node of a Catalog response."""

    device_id: str
    name: str = ""
    manufacturer: str = ""
    model: str = ""
    owner: str = ""
    civil_code: str = ""
    address: str = ""
    parental: bool = False
    parent_id: str = ""
    status: str = ""
    longitude: float | None = None
    latitude: float | None = None
    ptz_type: int | None = None
    register_way: str = ""
    secrecy: str = ""


def valid_device_id(device_id: str) -> bool:
    """Whether a DeviceID is 1-64 characters of [0-9A-Za-z_-]."""
    return _DEVICE_ID.fullmatch(device_id) is not None


def normalise_encoding(name: str) -> str:
    """Canonical upper-case charset name ("GB2312", "UTF-8", ...); ManscdpError if unknown."""
    upper = name.strip().upper()
    if upper in GB_CHARSETS:
        return "GB2312" if upper in ("GB_2312-80", "EUC-CN") else upper
    if upper in UTF8_NAMES:
        return "UTF-8"
    if upper in ASCII_NAMES:
        return upper
    raise ManscdpError(f"unsupported XML encoding {name!r}")


def _decode(body: bytes, declared: str | None) -> tuple[str, str]:
    """Decode the body; devices often lie about (or omit) the charset, so fall back."""
    if declared is not None and declared in GB_CHARSETS:
        return body.decode(GB_CODEC, errors="replace"), declared
    if declared is not None and declared in ASCII_NAMES and declared.startswith("ISO"):
        return body.decode("latin-1"), declared
    try:
        return body.decode("utf-8"), declared or "UTF-8"
    except UnicodeDecodeError:
        # a UTF-8 (or missing) declaration over GB2312 bytes is a common device bug
        return body.decode(GB_CODEC, errors="replace"), "GB2312"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _flatten(element: ET.Element, prefix: str, out: dict[str, str]) -> None:
    for child in element:
        tag = prefix + _local(child.tag)
        if len(child):
            _flatten(child, tag + ".", out)
        else:
            out[tag] = (child.text or "").strip()


def _list_element(root: ET.Element) -> ET.Element | None:
    for child in root:
        if _local(child.tag) in LIST_TAGS:
            return child
    for child in root:
        if any(_local(grand.tag) == ITEM_TAG for grand in child):
            return child
    return None


def parse_manscdp(body: bytes, max_size: int = DEFAULT_MAX_SIZE) -> ManscdpMessage:
    """Parse a MANSCDP XML body; ManscdpError on anything unacceptable."""
    if len(body) > max_size:
        raise ManscdpError(f"MANSCDP body of {len(body)} bytes exceeds {max_size}")
    raw = bytes(body).rstrip(_TRAILING_JUNK)
    if raw.startswith(_UTF8_BOM):
        raw = raw[len(_UTF8_BOM) :]
    declared: str | None = None
    match = _DECLARATION.match(raw)
    if match is not None:
        enc = _ENCODING_ATTR.search(match.group(0))
        if enc is not None:
            declared = normalise_encoding(enc.group(1).decode("ascii"))
        raw = raw[match.end() :]
    text, encoding = _decode(raw, declared)
    if _FORBIDDEN.search(text):
        raise ManscdpError("MANSCDP body declares a DOCTYPE or ENTITY; refused")
    try:
        root = ET.fromstring(text.strip())
    except ET.ParseError as err:
        raise ManscdpError(f"MANSCDP body is not well-formed XML: {err}") from err
    except (ValueError, RecursionError) as err:  # expat refuses some odd inputs this way
        raise ManscdpError(f"MANSCDP body cannot be parsed: {err}") from err
    root_tag = _local(root.tag)
    if root_tag not in ROOTS:
        raise ManscdpError(f"unknown MANSCDP root element <{root_tag}>")
    fields: dict[str, str] = {}
    list_element = _list_element(root)
    for child in root:
        if child is list_element:
            continue
        tag = _local(child.tag)
        if len(child):
            _flatten(child, tag + ".", fields)
        else:
            fields[tag] = (child.text or "").strip()
    cmd_type = fields.pop("CmdType", "")
    sn_text = fields.pop("SN", None)
    device_id = fields.pop("DeviceID", None)
    if not cmd_type:
        raise ManscdpError("MANSCDP body has no CmdType")
    if sn_text is None:
        raise ManscdpError("MANSCDP body has no SN")
    if not _DIGITS.fullmatch(sn_text):
        raise ManscdpError(f"MANSCDP SN is not a number: {sn_text[:32]!r}")
    if device_id is None:
        raise ManscdpError("MANSCDP body has no DeviceID")
    if not valid_device_id(device_id):
        raise ManscdpError(f"MANSCDP DeviceID is invalid: {device_id[:MAX_DEVICE_ID]!r}")
    sum_text = fields.pop("SumNum", None)
    sum_num = int(sum_text) if sum_text is not None and _DIGITS.fullmatch(sum_text) else None
    items: list[dict[str, str]] = []
    if list_element is not None:
        for item in list_element:
            if _local(item.tag) == ITEM_TAG:
                flat: dict[str, str] = {}
                _flatten(item, "", flat)
                items.append(flat)
    return ManscdpMessage(
        root=root_tag,
        cmd_type=cmd_type,
        sn=int(sn_text),
        device_id=device_id,
        fields=fields,
        items=items,
        sum_num=sum_num,
        encoding=encoding,
    )


def _float(text: str | None) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def _int(text: str | None) -> int | None:
    if text is None or not _DIGITS.fullmatch(text.strip()):
        return None
    return int(text.strip())


def catalog_items(message: ManscdpMessage) -> list[CatalogItem]:
    """Typed catalog items of a Catalog message; items without a DeviceID are skipped."""
    result: list[CatalogItem] = []
    for item in message.items:
        device_id = item.get("DeviceID", "")
        if not device_id:
            continue
        result.append(
            CatalogItem(
                device_id=device_id,
                name=item.get("Name", ""),
                manufacturer=item.get("Manufacturer", ""),
                model=item.get("Model", ""),
                owner=item.get("Owner", ""),
                civil_code=item.get("CivilCode", ""),
                address=item.get("Address", ""),
                parental=item.get("Parental", "").strip() == "1",
                parent_id=item.get("ParentID", ""),
                status=item.get("Status", "").upper(),
                longitude=_float(item.get("Longitude")),
                latitude=_float(item.get("Latitude")),
                ptz_type=_int(item.get("Info.PTZType", item.get("PTZType"))),
                register_way=item.get("RegisterWay", ""),
                secrecy=item.get("Secrecy", ""),
            )
        )
    return result


def split_catalog(items: list[CatalogItem], per_message: int) -> list[list[CatalogItem]]:
    """Cut items into message-sized groups; an empty catalog is still one (empty) message."""
    if per_message < 1:
        raise ValueError(f"per_message must be at least 1, got {per_message}")
    if not items:
        return [[]]
    return [items[i : i + per_message] for i in range(0, len(items), per_message)]


class CatalogAssembler:
    """Collects the messages of one multi-message Catalog response (device_id, sn)."""

    def __init__(self, device_id: str, sn: int, max_items: int = MAX_CATALOG_SUM) -> None:
        self.device_id = device_id
        self.sn = sn
        self.max_items = max_items
        self.sum_num: int | None = None
        self.done = False
        self._items: dict[str, CatalogItem] = {}

    @property
    def missing(self) -> int | None:
        """Items still expected, or None before the first message."""
        if self.sum_num is None:
            return None
        return max(0, self.sum_num - len(self._items))

    def items(self) -> list[CatalogItem]:
        """The distinct items received so far (a partial catalog when some never came)."""
        return list(self._items.values())

    def add(self, message: ManscdpMessage) -> list[CatalogItem] | None:
        """Add one message; return all items (once) when SumNum distinct ones have arrived."""
        if message.cmd_type != "Catalog":
            raise ManscdpError(f"expected a Catalog message, got {message.cmd_type}")
        if message.device_id != self.device_id or message.sn != self.sn:
            raise ManscdpError(
                f"Catalog message {message.device_id}/{message.sn} does not belong to "
                f"{self.device_id}/{self.sn}"
            )
        if self.done:
            return None
        if self.sum_num is None:
            # a device that omits SumNum sends everything in one message
            sum_num = message.sum_num if message.sum_num is not None else len(message.items)
            if sum_num > self.max_items:
                raise ManscdpError(f"Catalog SumNum {sum_num} exceeds the limit {self.max_items}")
            self.sum_num = sum_num
        for item in catalog_items(message):
            if item.device_id not in self._items and len(self._items) < self.max_items:
                self._items[item.device_id] = item
        if len(self._items) >= self.sum_num:
            self.done = True
            return list(self._items.values())
        return None


from protocols.gb28181.manscdp_build import (  # noqa: E402  (re-exported; builds on the above)
    build_alarm_notify,
    build_catalog_response,
    build_device_info_response,
    build_keepalive,
    build_ptz_control,
    build_query,
    build_response,
)

__all__ = [
    "CatalogAssembler",
    "CatalogItem",
    "ManscdpError",
    "ManscdpMessage",
    "build_alarm_notify",
    "build_catalog_response",
    "build_device_info_response",
    "build_keepalive",
    "build_ptz_control",
    "build_query",
    "build_response",
    "catalog_items",
    "normalise_encoding",
    "parse_manscdp",
    "split_catalog",
    "valid_device_id",
]
