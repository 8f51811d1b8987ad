"""protocols/sms receipts: SMSC receipt text in its many dialects parses into our states,
the receipt TLVs map the same way, and message ids match across hex and decimal."""

from __future__ import annotations

import contextlib
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.sms import (
    DeliveryState,
    Receipt,
    SmsRejected,
    SmsRejectReason,
    decode_message_state,
    decode_receipted_message_id,
    message_id_keys,
    parse_receipt,
    state_from_message_state,
    state_from_stat,
)

STANDARD = (
    "id:0123456789 sub:001 dlvrd:001 submit date:2611231205 done date:2611231206 "
    "stat:DELIVRD err:000 text:网格员请回电"
)


def test_the_appendix_b_format_parses_every_field() -> None:
    assert parse_receipt(STANDARD) == Receipt(
        message_id="0123456789",
        state=DeliveryState.DELIVERED,
        stat="DELIVRD",
        submitted=1,
        delivered=1,
        submit_date=datetime(2026, 11, 23, 12, 5),
        done_date=datetime(2026, 11, 23, 12, 6),
        error="000",
        text="网格员请回电",
    )


def test_case_spacing_twelve_digit_dates_and_bytes_are_tolerated() -> None:
    text = (
        b"ID: 7f3a  SUB:1 DLVRD:0  Submit_Date:261123120501 DONE   DATE: 261123120733 "
        b"Stat:undeliv Err:034 Text:"
    )
    receipt = parse_receipt(text)
    assert receipt.message_id == "7f3a" and receipt.state is DeliveryState.FAILED
    assert receipt.stat == "UNDELIV" and receipt.error == "034" and receipt.text == ""
    assert receipt.submit_date == datetime(2026, 11, 23, 12, 5, 1)
    assert receipt.done_date == datetime(2026, 11, 23, 12, 7, 33)


def test_missing_fields_and_bad_dates_come_back_none() -> None:
    receipt = parse_receipt("id:42 stat:EXPIRED submit date:99999 done date:2613451200")
    assert receipt.state is DeliveryState.EXPIRED
    assert receipt.submitted is None and receipt.delivered is None and receipt.error is None
    assert receipt.submit_date is None and receipt.done_date is None and receipt.text is None


def test_text_keeps_everything_after_it_even_key_like_words() -> None:
    receipt = parse_receipt("id:1 stat:DELIVRD err:0 text:call id:5 stat:now")
    assert receipt.text == "call id:5 stat:now" and receipt.message_id == "1"


@pytest.mark.parametrize(
    ("stat", "state"),
    [
        ("DELIVRD", DeliveryState.DELIVERED),
        ("EXPIRED", DeliveryState.EXPIRED),
        ("UNDELIV", DeliveryState.FAILED),
        ("REJECTD", DeliveryState.FAILED),
        ("DELETED", DeliveryState.FAILED),
        ("ACCEPTD", DeliveryState.SENT),
        ("ENROUTE", DeliveryState.SENT),
        ("UNKNOWN", DeliveryState.UNKNOWN),
        ("delivrd", DeliveryState.DELIVERED),
        ("WEIRD", DeliveryState.UNKNOWN),
    ],
)
def test_stat_words_map_to_our_states(stat: str, state: DeliveryState) -> None:
    assert state_from_stat(stat) is state
    assert parse_receipt(f"id:1 stat:{stat}").state is state


def test_only_sent_is_not_final() -> None:
    assert [s for s in DeliveryState if not s.final] == [DeliveryState.SENT]


@pytest.mark.parametrize(
    ("value", "state"),
    [
        (1, DeliveryState.SENT),
        (2, DeliveryState.DELIVERED),
        (3, DeliveryState.EXPIRED),
        (4, DeliveryState.FAILED),
        (5, DeliveryState.FAILED),
        (6, DeliveryState.SENT),
        (7, DeliveryState.UNKNOWN),
        (8, DeliveryState.FAILED),
        (200, DeliveryState.UNKNOWN),
    ],
)
def test_message_state_tlv_maps_to_our_states(value: int, state: DeliveryState) -> None:
    assert state_from_message_state(value) is state


def test_tlvs_override_the_text() -> None:
    receipt = parse_receipt(
        STANDARD,
        receipted_message_id=decode_receipted_message_id(b"ABC123\x00"),
        message_state=decode_message_state(b"\x05"),
    )
    assert receipt.message_id == "ABC123" and receipt.state is DeliveryState.FAILED
    assert receipt.stat == "DELIVRD"  # the text's word is kept for the record
    tlv_only = parse_receipt("", receipted_message_id="9", message_state=2)
    assert tlv_only.state is DeliveryState.DELIVERED and tlv_only.message_id == "9"


def test_a_bad_message_state_tlv_is_refused() -> None:
    with pytest.raises(SmsRejected) as info:
        decode_message_state(b"\x01\x02")
    assert info.value.reason is SmsRejectReason.BAD_VALUE


@pytest.mark.parametrize("text", ["", "hello there", "id:42", "stat:DELIVRD", "x" * 2000])
def test_text_that_is_not_a_receipt_is_refused(text: str) -> None:
    with pytest.raises(SmsRejected) as info:
        parse_receipt(text)
    assert info.value.reason is SmsRejectReason.NOT_A_RECEIPT


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300) | st.binary(max_size=300))
def test_receipt_garbage_raises_only_sms_rejected(text: str | bytes) -> None:
    with contextlib.suppress(SmsRejected):
        parse_receipt(text)


# --- message ids -----------------------------------------------------------------------


def matches(a: str, b: str) -> bool:
    return bool(message_id_keys(a) & message_id_keys(b))


def test_hex_and_decimal_forms_of_one_id_match() -> None:
    assert matches("0A1B2C3D", "169552957")
    assert matches("169552957", "a1b2c3d")
    assert matches("000123", "123")
    assert matches(" ABCDEF ", "abcdef")


def test_different_ids_do_not_match() -> None:
    assert not matches("12345", "54321")
    assert not matches("msg-1", "msg-2")
    assert message_id_keys("") == frozenset()


def test_keys_of_a_non_numeric_id_are_just_its_normal_form() -> None:
    assert message_id_keys("0Msg-9") == frozenset({"msg-9"})


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=2**64), st.integers(min_value=0, max_value=4))
def test_any_number_written_hex_or_decimal_with_padding_matches(value: int, pad: int) -> None:
    assert matches("0" * pad + format(value, "X"), str(value))
    assert matches(format(value, "x"), "0" * pad + str(value))
