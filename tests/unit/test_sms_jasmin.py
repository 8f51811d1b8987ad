"""protocols/sms Jasmin: /send parameters carry the text safely, answers and callbacks parse
into typed results, and anything that is not Jasmin's shape is refused with a reason."""

from __future__ import annotations

import contextlib
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.sms import (
    ACK_BODY,
    DeliveryState,
    DlrLevel,
    JasminDlr,
    SendAccepted,
    SendRefused,
    SmsRejected,
    SmsRejectReason,
    build_send_params,
    parse_dlr,
    parse_mo,
    parse_send_response,
)

UUID = "16fd2706-8baf-433b-82eb-8c7fada847da"
USER, PASSWORD = "hub", "s3cret"


def test_plain_text_goes_as_content_with_coding_0_and_dlr_fields() -> None:
    params = build_send_params(
        username=USER,
        password=PASSWORD,
        to="+8613800000000",
        text="Case 42: go to block 3.",
        sender="GridHub",
        dlr_url="https://hub.example/sms/dlr",
        priority=2,
    )
    assert params == {
        "username": "hub",
        "password": "s3cret",
        "to": "+8613800000000",
        "from": "GridHub",
        "coding": "0",
        "content": "Case 42: go to block 3.",
        "priority": "2",
        "dlr": "yes",
        "dlr-url": "https://hub.example/sms/dlr",
        "dlr-level": "3",
        "dlr-method": "POST",
    }


@pytest.mark.parametrize("text", ["网格员请回电", "mail@example", "a_b", "[x]", "€5"])
def test_other_text_goes_as_utf16be_hex_content_with_coding_8(text: str) -> None:
    params = build_send_params(username=USER, password=PASSWORD, to="13800000000", text=text)
    assert params["coding"] == "8" and "content" not in params and "dlr" not in params
    assert bytes.fromhex(params["hex-content"]).decode("utf-16-be") == text


@pytest.mark.parametrize(
    "kwargs",
    [
        {"to": "not-a-number"},
        {"username": ""},
        {"username": "u" * 31},
        {"password": "p" * 31},
        {"sender": "x" * 21},
        {"priority": 4},
        {"dlr_url": "ftp://x"},
        {"dlr_url": "http://x", "dlr_method": "PUT"},
    ],
)
def test_bad_send_arguments_are_refused(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {
        "username": USER,
        "password": PASSWORD,
        "to": "1380000",
        "text": "hi",
    }
    args.update(kwargs)
    with pytest.raises(SmsRejected) as info:
        build_send_params(**args)  # type: ignore[arg-type]
    assert info.value.reason is SmsRejectReason.BAD_ARGUMENT


def test_too_long_text_is_refused_before_sending() -> None:
    with pytest.raises(SmsRejected) as info:
        build_send_params(
            username=USER, password=PASSWORD, to="13800000000", text="网" * 200, max_segments=2
        )
    assert info.value.reason is SmsRejectReason.TOO_MANY_SEGMENTS


def test_send_answers() -> None:
    assert parse_send_response(200, f'Success "{UUID}"') == SendAccepted(UUID)
    assert parse_send_response(200, f'Success "{UUID}"\n'.encode()) == SendAccepted(UUID)
    refused = parse_send_response(412, 'Error "No route found"')
    assert refused == SendRefused(412, "No route found") and not refused.retryable
    auth = parse_send_response(403, 'Error "Authentication failure for username:hub"')
    assert isinstance(auth, SendRefused) and not auth.retryable
    fallback = parse_send_response(500, 'Error "Cannot send submit_sm, check log"')
    assert isinstance(fallback, SendRefused) and fallback.retryable
    proxy = parse_send_response(502, "<html>Bad Gateway</html>")
    assert proxy == SendRefused(502, "HTTP 502") and proxy.retryable
    huge = parse_send_response(503, 'Error "' + "x" * 10_000 + '"')
    assert huge == SendRefused(503, "HTTP 503")


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, "OK"),
        (200, 'Error "contradiction"'),
        (404, "Not Found"),
        (500, 'Success "abc"'),
        (200, 'Success "has space"'),
        (200, 'Success ""'),
    ],
)
def test_answers_that_are_not_jasmins_are_refused(status: int, body: str) -> None:
    with pytest.raises(SmsRejected) as info:
        parse_send_response(status, body)
    assert info.value.reason is SmsRejectReason.BAD_RESPONSE


def test_level_1_dlr() -> None:
    dlr = parse_dlr({"id": UUID, "message_status": "ESME_ROK", "level": "1", "connector": "c1"})
    assert dlr == JasminDlr(UUID, DlrLevel.SMSC, "ESME_ROK", DeliveryState.SENT, connector="c1")
    failed = parse_dlr({"id": UUID, "message_status": "ESME_RINVNUMDESTS", "level": "1"})
    assert failed.state is DeliveryState.FAILED


def test_level_2_dlr_has_the_receipt_fields() -> None:
    dlr = parse_dlr(
        {
            "id": UUID,
            "id_smsc": "2567",
            "message_status": "DELIVRD",
            "level": "3",
            "subdate": "2611231205",
            "donedate": "261123120633",
            "sub": "001",
            "dlvrd": "001",
            "err": "000",
            "text": "Case 42: go to",
            "connector": "mtn",
        }
    )
    assert dlr.state is DeliveryState.DELIVERED and dlr.level is DlrLevel.ALL
    assert dlr.smsc_message_id == "2567" and dlr.submitted == 1 and dlr.delivered == 1
    assert dlr.submit_date == datetime(2026, 11, 23, 12, 5)
    assert dlr.done_date == datetime(2026, 11, 23, 12, 6, 33)
    assert dlr.error == "000" and dlr.text == "Case 42: go to"


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({}, SmsRejectReason.MISSING_FIELD),
        ({"message_status": "DELIVRD", "level": "2"}, SmsRejectReason.MISSING_FIELD),
        ({"id": UUID, "level": "2"}, SmsRejectReason.MISSING_FIELD),
        ({"id": UUID, "message_status": "DELIVRD"}, SmsRejectReason.MISSING_FIELD),
        ({"id": UUID, "message_status": "DELIVRD", "level": "4"}, SmsRejectReason.BAD_VALUE),
        ({"id": UUID, "message_status": "DELIVRD", "level": "x"}, SmsRejectReason.BAD_VALUE),
        ({"id": "<script>", "message_status": "DELIVRD", "level": "1"}, SmsRejectReason.BAD_VALUE),
        ({"id": UUID, "message_status": "x y", "level": "1"}, SmsRejectReason.BAD_VALUE),
        (
            {"id": UUID, "message_status": "OK", "level": "1", "text": "t" * 600},
            SmsRejectReason.BAD_VALUE,
        ),
    ],
)
def test_dlr_garbage_is_refused(params: dict[str, str], reason: SmsRejectReason) -> None:
    with pytest.raises(SmsRejected) as info:
        parse_dlr(params)
    assert info.value.reason is reason


MO = {"id": UUID, "from": "+8613800000000", "to": "10690000", "origin-connector": "mtn"}


def test_mo_callback() -> None:
    mo = parse_mo(
        {**MO, "content": "Need help", "priority": "2", "validity": "2026-11-24 00:46:54"}
    )
    assert (mo.sender, mo.recipient, mo.connector, mo.text) == (
        "+8613800000000",
        "10690000",
        "mtn",
        "Need help",
    )
    assert mo.priority == 2 and mo.coding == 0 and mo.validity == datetime(2026, 11, 24, 0, 46, 54)


def test_ucs2_mo_text_comes_from_binary() -> None:
    raw = "网格员请回电".encode("utf-16-be")
    mo = parse_mo({**MO, "coding": "8", "content": "garbled", "binary": raw.hex()})
    assert mo.text == "网格员请回电" and mo.binary == raw


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        (MO, SmsRejectReason.MISSING_FIELD),
        ({**MO, "content": "x", "from": ""}, SmsRejectReason.MISSING_FIELD),
        ({**MO, "content": "x", "coding": "300"}, SmsRejectReason.BAD_VALUE),
        ({**MO, "content": "x", "binary": "zz"}, SmsRejectReason.BAD_VALUE),
        ({**MO, "content": "x", "coding": "8", "binary": "abc"}, SmsRejectReason.BAD_VALUE),
        ({**MO, "content": "x", "coding": "8", "binary": "414243"}, SmsRejectReason.BAD_TEXT),
        ({**MO, "content": "x" * 20000}, SmsRejectReason.BAD_VALUE),
    ],
)
def test_mo_garbage_is_refused(params: dict[str, str], reason: SmsRejectReason) -> None:
    with pytest.raises(SmsRejected) as info:
        parse_mo(params)
    assert info.value.reason is reason


def test_the_acknowledgement_body() -> None:
    assert ACK_BODY == "ACK/Jasmin"


KEYS = st.sampled_from(
    ["id", "message_status", "level", "from", "to", "origin-connector", "content", "coding",
     "binary", "priority", "validity", "sub", "dlvrd", "subdate", "donedate", "err", "text"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, st.text(max_size=40)), st.integers(100, 599), st.text(max_size=60))
def test_callback_and_answer_garbage_raise_only_sms_rejected(
    params: dict[str, str], status: int, body: str
) -> None:
    for call in (lambda: parse_dlr(params), lambda: parse_mo(params)):
        with contextlib.suppress(SmsRejected):
            call()
    with contextlib.suppress(SmsRejected):
        parse_send_response(status, body)
