"""SMPP 3.4 PDU types: command ids, statuses, TLV tags, the PDU dataclasses and MalformedPdu.

The codec is :mod:`protocols.sms.smpp`. Statuses are plain ints on the PDUs because an SMSC
may send any vendor value; :class:`CommandStatus` names the common ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import ClassVar

INTERFACE_VERSION = 0x34
"""SMPP 3.4, sent in bind requests."""


class CommandId(IntEnum):
    """The command ids this codec handles."""

    GENERIC_NACK = 0x80000000
    BIND_RECEIVER = 0x00000001
    BIND_RECEIVER_RESP = 0x80000001
    BIND_TRANSMITTER = 0x00000002
    BIND_TRANSMITTER_RESP = 0x80000002
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005
    UNBIND = 0x00000006
    UNBIND_RESP = 0x80000006
    BIND_TRANSCEIVER = 0x00000009
    BIND_TRANSCEIVER_RESP = 0x80000009
    ENQUIRE_LINK = 0x00000015
    ENQUIRE_LINK_RESP = 0x80000015


class CommandStatus(IntEnum):
    """Common ``command_status`` values (SMPP 3.4 §5.1.3)."""

    ESME_ROK = 0x00
    ESME_RINVMSGLEN = 0x01
    ESME_RINVCMDLEN = 0x02
    ESME_RINVCMDID = 0x03
    ESME_RINVBNDSTS = 0x04
    ESME_RALYBND = 0x05
    ESME_RSYSERR = 0x08
    ESME_RINVSRCADR = 0x0A
    ESME_RINVDSTADR = 0x0B
    ESME_RINVMSGID = 0x0C
    ESME_RBINDFAIL = 0x0D
    ESME_RINVPASWD = 0x0E
    ESME_RINVSYSID = 0x0F
    ESME_RMSGQFUL = 0x14
    ESME_RINVESMCLASS = 0x43
    ESME_RTHROTTLED = 0x58
    ESME_RX_T_APPN = 0x64
    ESME_RX_P_APPN = 0x65
    ESME_RX_R_APPN = 0x66
    ESME_RINVOPTPARSTREAM = 0xC0
    ESME_RUNKNOWNERR = 0xFF


class PduError(StrEnum):
    """Why bytes are not a valid PDU: a metrics label, so the set is fixed."""

    BAD_LENGTH = "bad_length"
    TOO_LARGE = "too_large"
    UNKNOWN_COMMAND = "unknown_command"
    TRUNCATED = "truncated"
    MISSING_NUL = "missing_nul"
    FIELD_TOO_LONG = "field_too_long"
    BAD_VALUE = "bad_value"
    BAD_TLV = "bad_tlv"
    UNEXPECTED_BODY = "unexpected_body"


_NACK_STATUS = {
    PduError.BAD_LENGTH: CommandStatus.ESME_RINVCMDLEN,
    PduError.TOO_LARGE: CommandStatus.ESME_RINVCMDLEN,
    PduError.UNKNOWN_COMMAND: CommandStatus.ESME_RINVCMDID,
    PduError.BAD_TLV: CommandStatus.ESME_RINVOPTPARSTREAM,
}


class MalformedPdu(ValueError):
    """Bytes that are not a valid SMPP PDU (or a PDU that cannot be encoded)."""

    def __init__(
        self,
        reason: PduError,
        detail: str,
        *,
        command_id: int | None = None,
        sequence: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
        self.command_id = command_id
        """Set once the header was read, so the caller can answer with generic_nack."""
        self.sequence = sequence
        self.field = field

    @property
    def nack_status(self) -> int:
        """The ``command_status`` for a generic_nack or error response answering this PDU."""
        return _NACK_STATUS.get(self.reason, CommandStatus.ESME_RINVMSGLEN)


@dataclass(frozen=True, slots=True)
class Tlv:
    """An optional parameter: 16-bit tag and raw value."""

    tag: int
    value: bytes


@dataclass(frozen=True, slots=True)
class Pdu:
    """Base of every PDU: the header's ``sequence`` and ``status``."""

    command_id: ClassVar[CommandId]
    sequence: int
    status: int = 0


@dataclass(frozen=True, slots=True)
class GenericNack(Pdu):
    """generic_nack: the peer could not read one of our PDUs."""

    command_id: ClassVar[CommandId] = CommandId.GENERIC_NACK


@dataclass(frozen=True, slots=True)
class EnquireLink(Pdu):
    """enquire_link: a keep-alive."""

    command_id: ClassVar[CommandId] = CommandId.ENQUIRE_LINK


@dataclass(frozen=True, slots=True)
class EnquireLinkResp(Pdu):
    """enquire_link_resp."""

    command_id: ClassVar[CommandId] = CommandId.ENQUIRE_LINK_RESP


@dataclass(frozen=True, slots=True)
class Unbind(Pdu):
    """unbind: end the session."""

    command_id: ClassVar[CommandId] = CommandId.UNBIND


@dataclass(frozen=True, slots=True)
class UnbindResp(Pdu):
    """unbind_resp."""

    command_id: ClassVar[CommandId] = CommandId.UNBIND_RESP


@dataclass(frozen=True, slots=True)
class Bind(Pdu):
    """Fields of a bind request; send one of the three subclasses."""

    command_id: ClassVar[CommandId] = CommandId.BIND_TRANSCEIVER
    system_id: str = ""
    password: str = ""
    system_type: str = ""
    interface_version: int = INTERFACE_VERSION
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""


@dataclass(frozen=True, slots=True)
class BindTransceiver(Bind):
    """bind_transceiver."""

    command_id: ClassVar[CommandId] = CommandId.BIND_TRANSCEIVER


@dataclass(frozen=True, slots=True)
class BindTransmitter(Bind):
    """bind_transmitter."""

    command_id: ClassVar[CommandId] = CommandId.BIND_TRANSMITTER


@dataclass(frozen=True, slots=True)
class BindReceiver(Bind):
    """bind_receiver."""

    command_id: ClassVar[CommandId] = CommandId.BIND_RECEIVER


@dataclass(frozen=True, slots=True)
class BindResp(Pdu):
    """Fields of a bind response (an error one may omit ``system_id``); use the subclasses."""

    command_id: ClassVar[CommandId] = CommandId.BIND_TRANSCEIVER_RESP
    system_id: str = ""
    tlvs: tuple[Tlv, ...] = ()


@dataclass(frozen=True, slots=True)
class BindTransceiverResp(BindResp):
    """bind_transceiver_resp."""

    command_id: ClassVar[CommandId] = CommandId.BIND_TRANSCEIVER_RESP


@dataclass(frozen=True, slots=True)
class BindTransmitterResp(BindResp):
    """bind_transmitter_resp."""

    command_id: ClassVar[CommandId] = CommandId.BIND_TRANSMITTER_RESP


@dataclass(frozen=True, slots=True)
class BindReceiverResp(BindResp):
    """bind_receiver_resp."""

    command_id: ClassVar[CommandId] = CommandId.BIND_RECEIVER_RESP


@dataclass(frozen=True, slots=True)
class ShortMessagePdu(Pdu):
    """The body submit_sm and deliver_sm share (SMPP 3.4 §4.4.1, §4.6.1); use the subclasses."""

    command_id: ClassVar[CommandId] = CommandId.SUBMIT_SM
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""
    tlvs: tuple[Tlv, ...] = ()

    def tlv(self, tag: int) -> bytes | None:
        """The value of the first TLV with ``tag``, or None."""
        return next((t.value for t in self.tlvs if t.tag == tag), None)


@dataclass(frozen=True, slots=True)
class SubmitSm(ShortMessagePdu):
    """submit_sm: a message from us to the SMSC."""

    command_id: ClassVar[CommandId] = CommandId.SUBMIT_SM


@dataclass(frozen=True, slots=True)
class DeliverSm(ShortMessagePdu):
    """deliver_sm: an inbound message or a delivery receipt from the SMSC."""

    command_id: ClassVar[CommandId] = CommandId.DELIVER_SM

    @property
    def is_receipt(self) -> bool:
        """True when esm_class marks a delivery receipt (message type bits 2–5 = 0b0001)."""
        return (self.esm_class & ESM_TYPE_MASK) == ESM_TYPE_RECEIPT


ESM_TYPE_MASK = 0x3C
"""esm_class message-type bits."""
ESM_TYPE_RECEIPT = 0x04
"""esm_class message type: SMSC delivery receipt."""
REGISTERED_DELIVERY_RECEIPT = 0x01
"""registered_delivery: ask for a receipt on final outcome, success or failure."""


@dataclass(frozen=True, slots=True)
class SubmitSmResp(Pdu):
    """submit_sm_resp; an error response may omit the body (``message_id`` then empty)."""

    command_id: ClassVar[CommandId] = CommandId.SUBMIT_SM_RESP
    message_id: str = ""


@dataclass(frozen=True, slots=True)
class DeliverSmResp(Pdu):
    """deliver_sm_resp (its message_id is unused and sent empty)."""

    command_id: ClassVar[CommandId] = CommandId.DELIVER_SM_RESP
    message_id: str = ""
