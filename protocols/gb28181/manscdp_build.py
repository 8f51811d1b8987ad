"""Builders of MANSCDP XML bodies (queries, controls, notifies and responses)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape, quoteattr

from protocols.gb28181.manscdp_errors import ManscdpError

if TYPE_CHECKING:
    from protocols.gb28181.manscdp import CatalogItem

DEFAULT_ENCODING = "GB2312"
CONTROL_PRIORITY = 5  # the default of GB/T 28181-2016 A.2.3 (1 highest ... 5 lowest)
CRLF = "\r\n"
_GB_DECLARED = frozenset({"GB2312", "GBK", "GB18030"})
_ALLOWED = _GB_DECLARED | {"UTF-8"}
_TAG = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_DEVICE_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")
_PTZ_HEX = re.compile(r"[0-9A-Fa-f]{16}")
_COORDINATE_FORMAT = "{:.6f}"
# characters XML 1.0 cannot carry at all; device names sometimes contain them
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _check_common(sn: int, device_id: str, encoding: str) -> str:
    if sn < 0:
        raise ManscdpError(f"SN must not be negative: {sn}")
    if _DEVICE_ID.fullmatch(device_id) is None:
        raise ManscdpError(f"DeviceID is invalid: {device_id[:64]!r}")
    upper = encoding.upper()
    if upper == "UTF8":
        upper = "UTF-8"
    if upper not in _ALLOWED:
        raise ManscdpError(f"unsupported encoding for MANSCDP bodies: {encoding!r}")
    return upper


def _element(tag: str, text: str) -> str:
    if _TAG.fullmatch(tag) is None:
        raise ManscdpError(f"invalid XML element name {tag!r}")
    return f"<{tag}>{escape(_INVALID_XML.sub('', text))}</{tag}>"


def _document(root: str, encoding: str, lines: list[str]) -> bytes:
    body = CRLF.join([f'<?xml version="1.0" encoding="{encoding}"?>', f"<{root}>", *lines])
    text = f"{body}{CRLF}</{root}>{CRLF}"
    # gb18030 is a superset of GB2312, so names outside GB2312 still survive the trip
    codec = "gb18030" if encoding in _GB_DECLARED else "utf-8"
    return text.encode(codec)


def _head(cmd_type: str, sn: int, device_id: str) -> list[str]:
    return [_element("CmdType", cmd_type), _element("SN", str(sn)), _element("DeviceID", device_id)]


def build_query(
    cmd_type: str,
    sn: int,
    device_id: str,
    encoding: str = DEFAULT_ENCODING,
    extra: dict[str, str] | None = None,
) -> bytes:
    """A <Query> (Catalog, DeviceInfo, DeviceStatus, RecordInfo ...) with optional extras."""
    enc = _check_common(sn, device_id, encoding)
    lines = _head(cmd_type, sn, device_id)
    lines += [_element(tag, value) for tag, value in (extra or {}).items()]
    return _document("Query", enc, lines)


def build_ptz_control(
    sn: int, device_id: str, ptz_cmd: str, encoding: str = DEFAULT_ENCODING
) -> bytes:
    """A DeviceControl <Control> carrying a 16-hex-digit PTZCmd."""
    enc = _check_common(sn, device_id, encoding)
    if _PTZ_HEX.fullmatch(ptz_cmd) is None:
        raise ManscdpError(f"PTZCmd must be 16 hex characters: {ptz_cmd[:32]!r}")
    lines = _head("DeviceControl", sn, device_id)
    lines += [
        _element("PTZCmd", ptz_cmd.upper()),
        "<Info>",
        _element("ControlPriority", str(CONTROL_PRIORITY)),
        "</Info>",
    ]
    return _document("Control", enc, lines)


def build_keepalive(
    sn: int, device_id: str, status: str = "OK", encoding: str = DEFAULT_ENCODING
) -> bytes:
    """A Keepalive <Notify>."""
    enc = _check_common(sn, device_id, encoding)
    return _document(
        "Notify", enc, [*_head("Keepalive", sn, device_id), _element("Status", status)]
    )


def build_response(
    cmd_type: str, sn: int, device_id: str, result: str = "OK", encoding: str = DEFAULT_ENCODING
) -> bytes:
    """A simple <Response> with a Result (DeviceControl, Alarm acknowledgement ...)."""
    enc = _check_common(sn, device_id, encoding)
    return _document("Response", enc, [*_head(cmd_type, sn, device_id), _element("Result", result)])


def _item_lines(item: CatalogItem) -> list[str]:
    pairs = [
        ("DeviceID", item.device_id),
        ("Name", item.name),
        ("Manufacturer", item.manufacturer),
        ("Model", item.model),
        ("Owner", item.owner),
        ("CivilCode", item.civil_code),
        ("Address", item.address),
        ("Parental", "1" if item.parental else "0"),
        ("ParentID", item.parent_id),
        ("RegisterWay", item.register_way),
        ("Secrecy", item.secrecy),
        ("Status", item.status),
    ]
    if item.longitude is not None:
        pairs.append(("Longitude", _COORDINATE_FORMAT.format(item.longitude)))
    if item.latitude is not None:
        pairs.append(("Latitude", _COORDINATE_FORMAT.format(item.latitude)))
    lines = ["<Item>", *(_element(tag, value) for tag, value in pairs if value)]
    if item.ptz_type is not None:
        lines += ["<Info>", _element("PTZType", str(item.ptz_type)), "</Info>"]
    lines.append("</Item>")
    return lines


def build_catalog_response(
    sn: int,
    device_id: str,
    sum_num: int,
    items: list[CatalogItem],
    encoding: str = DEFAULT_ENCODING,
) -> bytes:
    """One message of a (possibly multi-message) Catalog <Response>."""
    enc = _check_common(sn, device_id, encoding)
    if sum_num < len(items):
        raise ManscdpError(f"SumNum {sum_num} is less than the {len(items)} items sent")
    lines = [*_head("Catalog", sn, device_id), _element("SumNum", str(sum_num))]
    lines.append(f"<DeviceList Num={quoteattr(str(len(items)))}>")
    for item in items:
        lines += _item_lines(item)
    lines.append("</DeviceList>")
    return _document("Response", enc, lines)


def build_device_info_response(
    sn: int,
    device_id: str,
    device_name: str,
    manufacturer: str,
    model: str,
    firmware: str,
    channel: int = 1,
    result: str = "OK",
    encoding: str = DEFAULT_ENCODING,
) -> bytes:
    """A DeviceInfo <Response>."""
    enc = _check_common(sn, device_id, encoding)
    lines = [
        *_head("DeviceInfo", sn, device_id),
        _element("DeviceName", device_name),
        _element("Result", result),
        _element("Manufacturer", manufacturer),
        _element("Model", model),
        _element("Firmware", firmware),
        _element("Channel", str(channel)),
    ]
    return _document("Response", enc, lines)


def build_alarm_notify(
    sn: int,
    device_id: str,
    priority: int,
    method: int,
    time: str,
    description: str,
    longitude: float | None = None,
    latitude: float | None = None,
    alarm_type: int | None = None,
    encoding: str = DEFAULT_ENCODING,
) -> bytes:
    """An Alarm <Notify> (priority 1-4, method 1-7, ISO-like local time)."""
    enc = _check_common(sn, device_id, encoding)
    lines = [
        *_head("Alarm", sn, device_id),
        _element("AlarmPriority", str(priority)),
        _element("AlarmMethod", str(method)),
        _element("AlarmTime", time),
        _element("AlarmDescription", description),
    ]
    if longitude is not None:
        lines.append(_element("Longitude", _COORDINATE_FORMAT.format(longitude)))
    if latitude is not None:
        lines.append(_element("Latitude", _COORDINATE_FORMAT.format(latitude)))
    if alarm_type is not None:
        lines += ["<Info>", _element("AlarmType", str(alarm_type)), "</Info>"]
    return _document("Notify", enc, lines)
