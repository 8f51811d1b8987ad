"""SMPP 3.4 PDU codec: bytes ↔ typed PDUs (the stream framer is :mod:`protocols.sms.framing`).

Pure and strict: :func:`decode_pdu` raises :class:`MalformedPdu` (with a
:class:`PduError` reason) and nothing else, for any input; :func:`encode_pdu` refuses
values the wire format cannot carry the same way. C-octet strings are ASCII and their
limits count the terminating NUL, as the spec's "Var. max N" does.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from protocols.sms.smpp_pdus import (
    Bind,
    BindReceiver,
    BindReceiverResp,
    BindResp,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    CommandId,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    MalformedPdu,
    Pdu,
    PduError,
    ShortMessagePdu,
    SubmitSm,
    SubmitSmResp,
    Tlv,
    Unbind,
    UnbindResp,
)

HEADER = struct.Struct(">IIII")
HEADER_LEN = HEADER.size
TLV_HEADER = struct.Struct(">HH")
DEFAULT_MAX_PDU_LENGTH = 16 * 1024
"""Framer cap: a submit_sm or deliver_sm is at most a few hundred octets, so a larger
command_length means a broken or hostile peer, not a message."""
MAX_SEQUENCE = 0x7FFFFFFF
MAX_U32 = 0xFFFFFFFF
MAX_U16 = 0xFFFF
MAX_U8 = 0xFF

SYSTEM_ID_MAX = 16
PASSWORD_MAX = 9
SYSTEM_TYPE_MAX = 13
ADDRESS_RANGE_MAX = 41
SERVICE_TYPE_MAX = 6
ADDR_MAX = 21
TIME_MAX = 17
MESSAGE_ID_MAX = 65
SHORT_MESSAGE_MAX = 254
TIME_LEN = 16
"""An absolute or relative SMPP time is exactly 16 characters (or absent)."""

_HEADER_ONLY: dict[CommandId, type[Pdu]] = {
    c.command_id: c for c in (GenericNack, EnquireLink, EnquireLinkResp, Unbind, UnbindResp)
}
_BINDS: dict[CommandId, type[Bind]] = {
    c.command_id: c for c in (BindTransceiver, BindTransmitter, BindReceiver)
}
_BIND_RESPS: dict[CommandId, type[BindResp]] = {
    c.command_id: c for c in (BindTransceiverResp, BindTransmitterResp, BindReceiverResp)
}
_SHORT_MESSAGES: dict[CommandId, type[ShortMessagePdu]] = {
    c.command_id: c for c in (SubmitSm, DeliverSm)
}


@dataclass(frozen=True, slots=True)
class Header:
    """The 16-octet PDU header."""

    command_length: int
    command_id: int
    command_status: int
    sequence: int


# --- encoding ---------------------------------------------------------------------------


def _bad(reason: PduError, detail: str, field: str) -> MalformedPdu:
    return MalformedPdu(reason, detail, field=field)


def _cstr(value: str, max_len: int, field: str) -> bytes:
    try:
        raw = value.encode("ascii")
    except UnicodeEncodeError:
        raise _bad(PduError.BAD_VALUE, f"{field} must be ASCII", field) from None
    if b"\x00" in raw:
        raise _bad(PduError.BAD_VALUE, f"{field} holds a NUL", field)
    if len(raw) + 1 > max_len:
        raise _bad(PduError.FIELD_TOO_LONG, f"{field} over {max_len - 1} characters", field)
    return raw + b"\x00"


def _time(value: str, field: str) -> bytes:
    if value and len(value) != TIME_LEN:
        raise _bad(PduError.BAD_VALUE, f"{field} must be empty or {TIME_LEN} characters", field)
    return _cstr(value, TIME_MAX, field)


def _u8(value: int, field: str) -> bytes:
    if not 0 <= value <= MAX_U8:
        raise _bad(PduError.BAD_VALUE, f"{field} must fit one octet", field)
    return bytes([value])


def _tlvs(tlvs: tuple[Tlv, ...]) -> bytes:
    out = bytearray()
    for tlv in tlvs:
        if not 0 <= tlv.tag <= MAX_U16 or len(tlv.value) > MAX_U16:
            raise _bad(PduError.BAD_TLV, "TLV tag or length beyond 16 bits", "tlvs")
        out += TLV_HEADER.pack(tlv.tag, len(tlv.value)) + tlv.value
    return bytes(out)


def _body(pdu: Pdu) -> bytes:
    if isinstance(pdu, Bind):
        return b"".join(
            (
                _cstr(pdu.system_id, SYSTEM_ID_MAX, "system_id"),
                _cstr(pdu.password, PASSWORD_MAX, "password"),
                _cstr(pdu.system_type, SYSTEM_TYPE_MAX, "system_type"),
                _u8(pdu.interface_version, "interface_version"),
                _u8(pdu.addr_ton, "addr_ton"),
                _u8(pdu.addr_npi, "addr_npi"),
                _cstr(pdu.address_range, ADDRESS_RANGE_MAX, "address_range"),
            )
        )
    if isinstance(pdu, BindResp):
        return _cstr(pdu.system_id, SYSTEM_ID_MAX, "system_id") + _tlvs(pdu.tlvs)
    if isinstance(pdu, SubmitSmResp | DeliverSmResp):
        return _cstr(pdu.message_id, MESSAGE_ID_MAX, "message_id")
    if isinstance(pdu, ShortMessagePdu):
        return _short_message_body(pdu)
    return b""


def _short_message_body(pdu: ShortMessagePdu) -> bytes:
    if len(pdu.short_message) > SHORT_MESSAGE_MAX:
        raise _bad(
            PduError.FIELD_TOO_LONG, f"short_message over {SHORT_MESSAGE_MAX}", "short_message"
        )
    return b"".join(
        (
            _cstr(pdu.service_type, SERVICE_TYPE_MAX, "service_type"),
            _u8(pdu.source_addr_ton, "source_addr_ton"),
            _u8(pdu.source_addr_npi, "source_addr_npi"),
            _cstr(pdu.source_addr, ADDR_MAX, "source_addr"),
            _u8(pdu.dest_addr_ton, "dest_addr_ton"),
            _u8(pdu.dest_addr_npi, "dest_addr_npi"),
            _cstr(pdu.destination_addr, ADDR_MAX, "destination_addr"),
            _u8(pdu.esm_class, "esm_class"),
            _u8(pdu.protocol_id, "protocol_id"),
            _u8(pdu.priority_flag, "priority_flag"),
            _time(pdu.schedule_delivery_time, "schedule_delivery_time"),
            _time(pdu.validity_period, "validity_period"),
            _u8(pdu.registered_delivery, "registered_delivery"),
            _u8(pdu.replace_if_present_flag, "replace_if_present_flag"),
            _u8(pdu.data_coding, "data_coding"),
            _u8(pdu.sm_default_msg_id, "sm_default_msg_id"),
            _u8(len(pdu.short_message), "sm_length"),
            pdu.short_message,
            _tlvs(pdu.tlvs),
        )
    )


def encode_pdu(pdu: Pdu) -> bytes:
    """The wire bytes of ``pdu``; raises :class:`MalformedPdu` for values it cannot carry."""
    if not 0 <= pdu.sequence <= MAX_SEQUENCE:
        raise _bad(PduError.BAD_VALUE, "sequence must lie in [0, 0x7FFFFFFF]", "sequence")
    if not 0 <= pdu.status <= MAX_U32:
        raise _bad(PduError.BAD_VALUE, "status must fit 32 bits", "status")
    body = _body(pdu)
    return HEADER.pack(HEADER_LEN + len(body), pdu.command_id, pdu.status, pdu.sequence) + body


# --- decoding ---------------------------------------------------------------------------


class _Reader:
    """Reads a PDU body left to right, raising MalformedPdu that names the PDU."""

    def __init__(self, body: bytes, header: Header) -> None:
        self.body = body
        self.pos = 0
        self.header = header

    def fail(self, reason: PduError, detail: str, field: str | None = None) -> MalformedPdu:
        return MalformedPdu(
            reason,
            detail,
            command_id=self.header.command_id,
            sequence=self.header.sequence,
            field=field,
        )

    @property
    def remaining(self) -> int:
        return len(self.body) - self.pos

    def cstr(self, max_len: int, field: str) -> str:
        end = self.body.find(b"\x00", self.pos, self.pos + max_len)
        if end < 0:
            if self.remaining >= max_len:
                raise self.fail(PduError.FIELD_TOO_LONG, f"{field} over {max_len - 1}", field)
            raise self.fail(PduError.MISSING_NUL, f"{field} has no terminating NUL", field)
        raw = self.body[self.pos : end]
        self.pos = end + 1
        if not raw.isascii():
            raise self.fail(PduError.BAD_VALUE, f"{field} is not ASCII", field)
        return raw.decode("ascii")

    def time(self, field: str) -> str:
        value = self.cstr(TIME_MAX, field)
        if value and len(value) != TIME_LEN:
            raise self.fail(PduError.BAD_VALUE, f"{field} must be {TIME_LEN} characters", field)
        return value

    def u8(self, field: str) -> int:
        if self.remaining < 1:
            raise self.fail(PduError.TRUNCATED, f"body ends before {field}", field)
        self.pos += 1
        return self.body[self.pos - 1]

    def octets(self, size: int, field: str) -> bytes:
        if self.remaining < size:
            raise self.fail(PduError.TRUNCATED, f"body ends inside {field}", field)
        self.pos += size
        return self.body[self.pos - size : self.pos]

    def tlvs(self) -> tuple[Tlv, ...]:
        found: list[Tlv] = []
        while self.remaining:
            if self.remaining < TLV_HEADER.size:
                raise self.fail(PduError.BAD_TLV, "truncated TLV header", "tlvs")
            tag, size = TLV_HEADER.unpack_from(self.body, self.pos)
            self.pos += TLV_HEADER.size
            if self.remaining < size:
                raise self.fail(PduError.BAD_TLV, f"TLV 0x{tag:04X} runs past the PDU", "tlvs")
            found.append(Tlv(tag, self.octets(size, "tlvs")))
        return tuple(found)

    def end(self) -> None:
        if self.remaining:
            raise self.fail(PduError.UNEXPECTED_BODY, "octets after the last field")


def decode_header(data: bytes) -> Header:
    """The header at the start of ``data``; raises truncated when under 16 octets."""
    if len(data) < HEADER_LEN:
        raise MalformedPdu(PduError.TRUNCATED, "fewer than 16 octets of header")
    return Header(*HEADER.unpack_from(data))


def decode_pdu(frame: bytes, *, max_length: int = DEFAULT_MAX_PDU_LENGTH) -> Pdu:
    """Decode one complete PDU (as cut by :class:`PduFramer`).

    Raises :class:`MalformedPdu` and nothing else; once the header was read the error
    carries its ``command_id`` and ``sequence`` for a generic_nack.
    """
    header = decode_header(frame)
    if header.command_length != len(frame) or header.command_length < HEADER_LEN:
        raise MalformedPdu(
            PduError.BAD_LENGTH,
            f"command_length {header.command_length} but {len(frame)} octets",
            command_id=header.command_id,
            sequence=header.sequence,
        )
    if header.command_length > max_length:
        raise MalformedPdu(PduError.TOO_LARGE, f"PDU over {max_length} octets")
    reader = _Reader(bytes(frame[HEADER_LEN:]), header)
    try:
        command = CommandId(header.command_id)
    except ValueError:
        raise reader.fail(
            PduError.UNKNOWN_COMMAND, f"command_id 0x{header.command_id:08X}"
        ) from None
    pdu = _decode_body(command, header, reader)
    reader.end()
    return pdu


def _decode_body(command: CommandId, header: Header, r: _Reader) -> Pdu:
    seq, status = header.sequence, header.command_status
    if command in _HEADER_ONLY:
        return _HEADER_ONLY[command](seq, status)
    if command in _BINDS:
        return _BINDS[command](
            seq,
            status,
            system_id=r.cstr(SYSTEM_ID_MAX, "system_id"),
            password=r.cstr(PASSWORD_MAX, "password"),
            system_type=r.cstr(SYSTEM_TYPE_MAX, "system_type"),
            interface_version=r.u8("interface_version"),
            addr_ton=r.u8("addr_ton"),
            addr_npi=r.u8("addr_npi"),
            address_range=r.cstr(ADDRESS_RANGE_MAX, "address_range"),
        )
    if command in _BIND_RESPS:
        if not r.remaining and status:  # an error response may omit the body
            return _BIND_RESPS[command](seq, status)
        system_id = r.cstr(SYSTEM_ID_MAX, "system_id")
        return _BIND_RESPS[command](seq, status, system_id=system_id, tlvs=r.tlvs())
    if command is CommandId.SUBMIT_SM_RESP:
        if not r.remaining and status:
            return SubmitSmResp(seq, status)
        return SubmitSmResp(seq, status, r.cstr(MESSAGE_ID_MAX, "message_id"))
    if command is CommandId.DELIVER_SM_RESP:
        message_id = r.cstr(MESSAGE_ID_MAX, "message_id") if r.remaining else ""
        return DeliverSmResp(seq, status, message_id)
    return _decode_short_message(_SHORT_MESSAGES[command], seq, status, r)


def _decode_short_message(
    cls: type[ShortMessagePdu], seq: int, status: int, r: _Reader
) -> ShortMessagePdu:
    # Keyword arguments are evaluated left to right, which is the wire order.
    return cls(
        seq,
        status,
        service_type=r.cstr(SERVICE_TYPE_MAX, "service_type"),
        source_addr_ton=r.u8("source_addr_ton"),
        source_addr_npi=r.u8("source_addr_npi"),
        source_addr=r.cstr(ADDR_MAX, "source_addr"),
        dest_addr_ton=r.u8("dest_addr_ton"),
        dest_addr_npi=r.u8("dest_addr_npi"),
        destination_addr=r.cstr(ADDR_MAX, "destination_addr"),
        esm_class=r.u8("esm_class"),
        protocol_id=r.u8("protocol_id"),
        priority_flag=r.u8("priority_flag"),
        schedule_delivery_time=r.time("schedule_delivery_time"),
        validity_period=r.time("validity_period"),
        registered_delivery=r.u8("registered_delivery"),
        replace_if_present_flag=r.u8("replace_if_present_flag"),
        data_coding=r.u8("data_coding"),
        sm_default_msg_id=r.u8("sm_default_msg_id"),
        short_message=_short_message(r),
        tlvs=r.tlvs(),
    )


def _short_message(r: _Reader) -> bytes:
    sm_length = r.u8("sm_length")
    if sm_length > SHORT_MESSAGE_MAX:
        raise r.fail(PduError.FIELD_TOO_LONG, f"sm_length {sm_length}", "short_message")
    return r.octets(sm_length, "short_message")
