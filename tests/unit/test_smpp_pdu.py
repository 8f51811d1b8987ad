"""protocols/sms SMPP 3.4 codec: every supported PDU round-trips, the spec's own example
decodes, malformed bytes raise MalformedPdu with its reason, and the framer cuts streams."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.sms import (
    DEFAULT_MAX_PDU_LENGTH,
    ESM_UDHI,
    REGISTERED_DELIVERY_RECEIPT,
    TAG_MESSAGE_STATE,
    TAG_RECEIPTED_MESSAGE_ID,
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    CommandId,
    CommandStatus,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    MalformedPdu,
    Pdu,
    PduError,
    PduFramer,
    SubmitSm,
    SubmitSmResp,
    Tlv,
    Unbind,
    UnbindResp,
    decode_pdu,
    encode_message,
    encode_pdu,
    parse_receipt,
)

SUBMIT = SubmitSm(
    7,
    source_addr_ton=5,
    source_addr="GridHub",
    dest_addr_ton=1,
    dest_addr_npi=1,
    destination_addr="8613800000000",
    esm_class=ESM_UDHI,
    registered_delivery=REGISTERED_DELIVERY_RECEIPT,
    data_coding=8,
    validity_period="000001000000000R",
    short_message=bytes([5, 0, 3, 1, 2, 1]) + "网格".encode("utf-16-be"),
    tlvs=(Tlv(0x020C, b"\x00\x01"),),
)

PDUS: list[Pdu] = [
    BindTransceiver(1, system_id="gridhub", password="secret08", system_type="HUB"),
    BindTransmitter(2, system_id="tx", password="", address_range="^86.*"),
    BindReceiver(3, system_id="rx", password="p", addr_ton=1, addr_npi=1),
    BindTransceiverResp(1, system_id="SMSC", tlvs=(Tlv(0x0210, b"\x34"),)),
    BindTransmitterResp(2, CommandStatus.ESME_RBINDFAIL),
    BindReceiverResp(3, system_id="SMSC"),
    SUBMIT,
    SubmitSmResp(7, message_id="0A1B2C3D"),
    SubmitSmResp(8, CommandStatus.ESME_RTHROTTLED),
    DeliverSm(
        900,
        source_addr="8613800000000",
        esm_class=0x04,
        short_message=b"id:0A1B2C3D sub:001 dlvrd:001 stat:DELIVRD err:000 text:",
        tlvs=(Tlv(TAG_RECEIPTED_MESSAGE_ID, b"0A1B2C3D\x00"), Tlv(TAG_MESSAGE_STATE, b"\x02")),
    ),
    DeliverSmResp(900),
    EnquireLink(11),
    EnquireLinkResp(11),
    Unbind(12),
    UnbindResp(12),
    GenericNack(13, CommandStatus.ESME_RINVCMDID),
]


@pytest.mark.parametrize("pdu", PDUS, ids=lambda p: type(p).__name__)
def test_every_supported_pdu_round_trips(pdu: Pdu) -> None:
    wire = encode_pdu(pdu)
    assert struct.unpack(">I", wire[:4])[0] == len(wire)
    assert decode_pdu(wire) == pdu


def test_the_spec_bind_transmitter_example_decodes() -> None:
    wire = bytes.fromhex(
        "0000002F000000020000000000000001534D50503354455354007365637265743038005355424D49543100500101"
        "00"
    )
    assert decode_pdu(wire) == BindTransmitter(
        1,
        system_id="SMPP3TEST",
        password="secret08",
        system_type="SUBMIT1",
        interface_version=0x50,
        addr_ton=1,
        addr_npi=1,
    )


def test_a_submit_sm_has_the_fields_in_wire_order() -> None:
    wire = encode_pdu(SubmitSm(1, source_addr="A", destination_addr="B", short_message=b"hi"))
    body = wire[16:]
    assert body == (
        b"\x00"  # service_type
        + b"\x00\x00A\x00"  # source ton, npi, addr
        + b"\x00\x00B\x00"  # destination ton, npi, addr
        + b"\x00\x00\x00"  # esm_class, protocol_id, priority_flag
        + b"\x00\x00"  # schedule_delivery_time, validity_period
        + b"\x00\x00\x00\x00"  # registered_delivery, replace, data_coding, default msg id
        + b"\x02hi"  # sm_length, short_message
    )


def test_segments_from_the_encoder_fit_a_submit_sm() -> None:
    for seq, seg in enumerate(encode_message("网格员" * 60, ref=3), start=1):
        pdu = SubmitSm(
            seq,
            destination_addr="8613800000000",
            esm_class=seg.esm_class_bits,
            data_coding=seg.data_coding,
            short_message=seg.short_message,
        )
        assert decode_pdu(encode_pdu(pdu)) == pdu


def test_a_deliver_sm_receipt_is_recognised_and_its_tlvs_read() -> None:
    pdu = decode_pdu(encode_pdu(PDUS[9]))
    assert isinstance(pdu, DeliverSm) and pdu.is_receipt
    receipted = pdu.tlv(TAG_RECEIPTED_MESSAGE_ID)
    state = pdu.tlv(TAG_MESSAGE_STATE)
    assert receipted == b"0A1B2C3D\x00" and state == b"\x02" and pdu.tlv(0x9999) is None
    assert parse_receipt(pdu.short_message).message_id == "0A1B2C3D"
    assert not DeliverSm(1, short_message=b"hello").is_receipt


# --- refusals --------------------------------------------------------------------------


def header(length: int, command: int, status: int = 0, seq: int = 5) -> bytes:
    return struct.pack(">IIII", length, command, status, seq)


def refused(wire: bytes) -> MalformedPdu:
    with pytest.raises(MalformedPdu) as info:
        decode_pdu(wire)
    return info.value


def test_wrong_command_length_is_bad_length() -> None:
    err = refused(header(20, CommandId.ENQUIRE_LINK))
    assert err.reason is PduError.BAD_LENGTH and err.nack_status == CommandStatus.ESME_RINVCMDLEN
    assert err.sequence == 5


def test_short_input_is_truncated() -> None:
    assert refused(b"\x00\x00\x00\x10\x00").reason is PduError.TRUNCATED


def test_unknown_command_carries_the_sequence_for_a_nack() -> None:
    err = refused(header(16, 0x00000103))  # data_sm: not supported
    assert err.reason is PduError.UNKNOWN_COMMAND and err.command_id == 0x103
    assert err.sequence == 5 and err.nack_status == CommandStatus.ESME_RINVCMDID


def test_too_large_is_refused() -> None:
    body = b"\x00" * DEFAULT_MAX_PDU_LENGTH
    err = refused(header(16 + len(body), CommandId.ENQUIRE_LINK) + body)
    assert err.reason is PduError.TOO_LARGE


def test_a_body_on_a_header_only_pdu_is_unexpected() -> None:
    assert refused(header(17, CommandId.ENQUIRE_LINK) + b"\x00").reason is PduError.UNEXPECTED_BODY


def with_body(command: int, body: bytes, status: int = 0) -> bytes:
    return header(16 + len(body), command, status) + body


@pytest.mark.parametrize(
    ("body", "reason", "field"),
    [
        (b"toolongsystemid01\x00p\x00\x00\x34\x00\x00\x00", PduError.FIELD_TOO_LONG, "system_id"),
        (b"id\x00pw", PduError.MISSING_NUL, "password"),
        (b"id\x00pw\x00t\x00", PduError.TRUNCATED, "interface_version"),
        (b"id\x00pw\x00t\x00\x34\x00\x00\x00extra", PduError.UNEXPECTED_BODY, None),
        (b"\xff\x00pw\x00t\x00\x34\x00\x00\x00", PduError.BAD_VALUE, "system_id"),
    ],
)
def test_bind_field_errors_name_the_field(body: bytes, reason: PduError, field: str | None) -> None:
    err = refused(with_body(CommandId.BIND_TRANSCEIVER, body))
    assert (err.reason, err.field) == (reason, field)


def submit_body(short_message_len: int, short_message: bytes, tail: bytes = b"") -> bytes:
    return (
        b"\x00\x00\x00A\x00\x00\x00B\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
        + bytes([short_message_len])
        + short_message
        + tail
    )


def test_submit_sm_refusals() -> None:
    ok = decode_pdu(with_body(CommandId.SUBMIT_SM, submit_body(2, b"hi")))
    assert isinstance(ok, SubmitSm) and ok.short_message == b"hi"
    cases = [
        (submit_body(255, b"x" * 255), PduError.FIELD_TOO_LONG),
        (submit_body(5, b"hi"), PduError.TRUNCATED),
        (submit_body(2, b"hi", b"\x02\x0c\x00\x05ab"), PduError.BAD_TLV),
        (submit_body(2, b"hi", b"\x02"), PduError.BAD_TLV),
        (b"\x00\x00\x00A\x00\x00\x00B\x00\x00\x00\x00123\x00", PduError.BAD_VALUE),
    ]
    for body, reason in cases:
        assert refused(with_body(CommandId.SUBMIT_SM, body)).reason is reason


def test_error_responses_may_omit_the_body_but_success_may_not() -> None:
    resp = decode_pdu(header(16, CommandId.SUBMIT_SM_RESP, CommandStatus.ESME_RSYSERR))
    assert resp == SubmitSmResp(5, CommandStatus.ESME_RSYSERR)
    assert refused(header(16, CommandId.SUBMIT_SM_RESP)).reason is PduError.MISSING_NUL
    assert decode_pdu(header(16, CommandId.DELIVER_SM_RESP)) == DeliverSmResp(5)


@pytest.mark.parametrize(
    ("pdu", "reason"),
    [
        (SubmitSm(1, destination_addr="1" * 21), PduError.FIELD_TOO_LONG),
        (SubmitSm(1, short_message=b"x" * 255), PduError.FIELD_TOO_LONG),
        (SubmitSm(1, source_addr="网"), PduError.BAD_VALUE),
        (SubmitSm(1, source_addr="a\x00b"), PduError.BAD_VALUE),
        (SubmitSm(1, esm_class=256), PduError.BAD_VALUE),
        (SubmitSm(1, validity_period="1d"), PduError.BAD_VALUE),
        (SubmitSm(1, tlvs=(Tlv(0x10000, b""),)), PduError.BAD_TLV),
        (BindTransceiver(1, password="0123456789"), PduError.FIELD_TOO_LONG),
        (EnquireLink(-1), PduError.BAD_VALUE),
        (EnquireLink(0x80000000), PduError.BAD_VALUE),
    ],
)
def test_values_the_wire_cannot_carry_are_refused_on_encode(pdu: Pdu, reason: PduError) -> None:
    with pytest.raises(MalformedPdu) as info:
        encode_pdu(pdu)
    assert info.value.reason is reason


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_malformed_pdu(data: bytes) -> None:
    with contextlib.suppress(MalformedPdu):
        decode_pdu(data)


COMMANDS = st.sampled_from([int(c) for c in CommandId] + [0x103, 0x7FFFFFFF])


@settings(max_examples=300, deadline=None)
@given(COMMANDS, st.integers(0, 2**32 - 1), st.binary(max_size=200))
def test_a_valid_header_over_random_bodies_raises_only_malformed_pdu(
    command: int, status: int, body: bytes
) -> None:
    try:
        pdu = decode_pdu(header(16 + len(body), command, status) + body)
    except MalformedPdu:
        return
    assert decode_pdu(encode_pdu(pdu)) == pdu  # whatever decodes re-encodes to itself


# --- framing ---------------------------------------------------------------------------


def test_the_framer_cuts_a_stream_fed_in_arbitrary_chunks() -> None:
    stream = b"".join(encode_pdu(p) for p in PDUS)
    for chunk in (1, 7, 16, 100, len(stream)):
        framer = PduFramer()
        frames = []
        for i in range(0, len(stream), chunk):
            frames += framer.feed(stream[i : i + chunk])
        assert [decode_pdu(f) for f in frames] == PDUS
        assert framer.buffered == 0


def test_the_framer_refuses_absurd_lengths_and_stays_broken() -> None:
    good = encode_pdu(EnquireLink(1))
    framer = PduFramer(max_length=1024)
    assert framer.feed(good + struct.pack(">I", 2000) + b"\x00" * 12) == [good]
    assert framer.error is not None and framer.error.reason is PduError.TOO_LARGE
    with pytest.raises(MalformedPdu):
        framer.feed(good)
    tiny = PduFramer()
    with pytest.raises(MalformedPdu) as info:
        tiny.feed(struct.pack(">I", 8) + b"\x00" * 12)
    assert info.value.reason is PduError.BAD_LENGTH


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=20))
def test_the_framer_raises_only_malformed_pdu_and_stays_bounded(chunks: list[bytes]) -> None:
    framer = PduFramer(max_length=256)
    try:
        for chunk in chunks:
            for frame in framer.feed(chunk):
                assert 16 <= len(frame) <= 256
            assert framer.buffered < 256
    except MalformedPdu:
        pass
