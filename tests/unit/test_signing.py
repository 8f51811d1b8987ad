"""protocols/signing.py: a signature verifies for exactly the timestamp, body and secret it
was made with."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from protocols import signing

SECRET = "s3cret"
TS = "1700000000"
BODY = b'{"type":"alert.raised","org":"d01","data":{"title":"x"}}'


def test_signature_is_prefixed_hex_hmac_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), TS.encode() + b"." + BODY, hashlib.sha256).hexdigest()
    assert signing.sign(SECRET, TS, BODY) == "sha256=" + expected


def test_round_trip_with_and_without_prefix() -> None:
    signature = signing.sign(SECRET, TS, BODY)
    assert signing.verify(SECRET, TS, BODY, signature)
    assert signing.verify(SECRET, TS, BODY, signature.removeprefix(signing.SIGNATURE_PREFIX))


def test_tampering_with_any_part_fails() -> None:
    signature = signing.sign(SECRET, TS, BODY)
    assert not signing.verify(SECRET, TS, BODY + b" ", signature)
    assert not signing.verify(SECRET, TS, BODY.replace(b"d01", b"d02"), signature)
    assert not signing.verify(SECRET, "1700000001", BODY, signature)
    assert not signing.verify("other", TS, BODY, signature)
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    assert not signing.verify(SECRET, TS, BODY, flipped)
    assert not signing.verify(SECRET, TS, BODY, signature[:-2])
    assert not signing.verify(SECRET, TS, BODY, "")
    assert not signing.verify(SECRET, TS, BODY, "sha1=" + signature.removeprefix("sha256="))


def test_timestamp_and_body_cannot_trade_bytes() -> None:
    # "<ts>." + body is unambiguous only because the timestamp has no dot: moving bytes
    # across the separator changes what is signed.
    signature = signing.sign(SECRET, "17", b"00.x")
    assert not signing.verify(SECRET, "1700", b"x", signature)


@given(secret=st.text(min_size=1), timestamp=st.text(min_size=1), body=st.binary())
def test_any_signed_request_verifies(secret: str, timestamp: str, body: bytes) -> None:
    assert signing.verify(secret, timestamp, body, signing.sign(secret, timestamp, body))


@given(body=st.binary(), other=st.binary())
def test_a_signature_never_verifies_another_body(body: bytes, other: bytes) -> None:
    if body != other:
        assert not signing.verify(SECRET, TS, other, signing.sign(SECRET, TS, body))
