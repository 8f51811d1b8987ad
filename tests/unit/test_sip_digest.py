"""protocols/sip/digest: GB28181 REGISTER digests verify against independently computed
hashes; nonces expire, resist forgery and replay."""

from __future__ import annotations

import hashlib

import pytest

from protocols.sip.digest import (
    NONCE_INVALID,
    NONCE_OK,
    NONCE_REPLAY,
    NONCE_STALE,
    DigestChallenge,
    DigestCredentials,
    NonceBook,
    authorization_value,
    parse_challenge,
    parse_credentials,
    verify_response,
)
from protocols.sip.errors import SipParseError
from protocols.sip.message import parse_message

USER = "34020000001320000001"
REALM = "3402000000"
URI = "sip:34020000002000000001@3402000000"
PASSWORD = "12345678"
NONCE = "9bd055e3f9b87e2a"
CNONCE = "0a4f113b"


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def expected_md5(nonce: str = NONCE, nc: str = "00000001", method: str = "REGISTER") -> str:
    ha1 = md5(f"{USER}:{REALM}:{PASSWORD}")
    ha2 = md5(f"{method}:{URI}")
    return md5(f"{ha1}:{nonce}:{nc}:{CNONCE}:auth:{ha2}")


def hikvision_authorization(response: str, nonce: str = NONCE, nc: str = "00000001") -> str:
    return (
        f'Digest username="{USER}", realm="{REALM}", nonce="{nonce}", uri="{URI}", '
        f'response="{response}", algorithm=MD5, cnonce="{CNONCE}", qop=auth, nc={nc}'
    )


def test_hikvision_register_with_qop_auth_verifies() -> None:
    register = (
        f"REGISTER {URI} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK1\r\n"
        f"From: <sip:{USER}@{REALM}>;tag=1\r\nTo: <sip:{USER}@{REALM}>\r\n"
        "Call-ID: 1\r\nCSeq: 2 REGISTER\r\n"
        f"Authorization: {hikvision_authorization(expected_md5())}\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    message = parse_message(register)
    value = message.headers.get("Authorization")
    assert value is not None
    credentials = parse_credentials(value)
    assert credentials.username == USER
    assert (credentials.qop, credentials.nc, credentials.cnonce) == ("auth", "00000001", CNONCE)
    assert verify_response(credentials, "REGISTER", PASSWORD)
    assert not verify_response(credentials, "REGISTER", "wrong")
    assert not verify_response(credentials, "MESSAGE", PASSWORD)


def test_rfc2069_style_without_qop_verifies() -> None:
    response = md5(f"{md5(f'{USER}:{REALM}:{PASSWORD}')}:{NONCE}:{md5(f'REGISTER:{URI}')}")
    value = (
        f'Digest\tusername="{USER}",realm="{REALM}",nonce="{NONCE}",uri="{URI}",'
        f'response="{response.upper()}",algorithm=MD5'
    )
    credentials = parse_credentials(value)
    assert credentials.qop is None
    assert verify_response(credentials, "REGISTER", PASSWORD)


def test_sha256_verifies() -> None:
    ha1 = sha256(f"{USER}:{REALM}:{PASSWORD}")
    ha2 = sha256(f"REGISTER:{URI}")
    response = sha256(f"{ha1}:{NONCE}:00000002:{CNONCE}:auth:{ha2}")
    value = (
        f'Digest username="{USER}", realm="{REALM}", nonce="{NONCE}", uri="{URI}", '
        f'response="{response}", algorithm=SHA-256, cnonce="{CNONCE}", qop=auth, nc=00000002'
    )
    credentials = parse_credentials(value)
    assert verify_response(credentials, "REGISTER", PASSWORD)
    tampered = DigestCredentials(**{**credentials.__dict__, "nc": "00000003"})
    assert not verify_response(tampered, "REGISTER", PASSWORD)


@pytest.mark.parametrize(
    "value",
    [
        "Basic dXNlcjpwYXNz",
        f'Digest realm="{REALM}", nonce="n", uri="{URI}", response="{"0" * 32}"',
        f'Digest username="u", realm="{REALM}", nonce="n", uri="{URI}", response="xyz"',
        f'Digest username="u", realm="r", nonce="n", uri="u", response="{"0" * 32}", qop=auth',
        f'Digest username="u", realm="r", nonce="n", uri="u", response="{"0" * 32}", '
        'qop=auth, nc=1, cnonce="c"',
        f'Digest username="u", realm="r", nonce="n", uri="u", response="{"0" * 32}", '
        "algorithm=SHA-1",
        f'Digest username="u", realm="r", nonce="n", uri="u", response="{"0" * 32}", '
        'qop=auth-int, nc=00000001, cnonce="c"',
        f'Digest username="{"u" * 5000}", realm="r", nonce="n", uri="u", response="{"0" * 32}"',
        'Digest username="unterminated',
        "Digest username",
        "",
        "   ",
        'Digest username="a", username="b"',
    ],
)
def test_malformed_credentials_are_400(value: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_credentials(value)
    assert info.value.status == 400


def test_challenge_header_value_and_parse_round_trip() -> None:
    challenge = DigestChallenge(realm=REALM, nonce="abc", opaque="o", stale=True)
    value = challenge.header_value()
    assert value == (
        'Digest realm="3402000000", nonce="abc", algorithm=MD5, qop="auth", opaque="o", stale=TRUE'
    )
    assert parse_challenge(value) == challenge
    plain = parse_challenge('Digest realm="r",nonce="n"')
    assert (plain.algorithm, plain.qop, plain.stale) == ("MD5", None, False)
    with pytest.raises(SipParseError):
        parse_challenge('Digest realm="r"')


def test_client_authorization_value_verifies_on_the_server_side() -> None:
    challenge = DigestChallenge(realm=REALM, nonce=NONCE, qop="auth,auth-int", opaque="op")
    value = authorization_value(challenge, "REGISTER", URI, USER, PASSWORD, nc=3, cnonce=CNONCE)
    credentials = parse_credentials(value)
    assert credentials.nc == "00000003"
    assert credentials.opaque == "op"
    assert credentials.response == expected_md5(nc="00000003")
    assert verify_response(credentials, "REGISTER", PASSWORD)
    no_qop = authorization_value(DigestChallenge(REALM, NONCE, qop=None), "INVITE", URI, USER, "p")
    parsed = parse_credentials(no_qop)
    assert parsed.qop is None and parsed.cnonce is None
    assert verify_response(parsed, "INVITE", "p")


def test_nonce_book_accepts_its_own_nonce_then_goes_stale() -> None:
    book = NonceBook(b"secret", lifetime=60.0)
    nonce = book.issue(now=1000.0)
    assert nonce != book.issue(now=1000.0)
    credentials = parse_credentials(hikvision_authorization(expected_md5(nonce), nonce))
    assert book.check(credentials, now=1010.0) == NONCE_OK
    stale = parse_credentials(hikvision_authorization(expected_md5(nonce), nonce, "00000002"))
    assert book.check(stale, now=1061.0) == NONCE_STALE


def test_nonce_book_survives_restart_but_rejects_forgery() -> None:
    nonce = NonceBook(b"secret", 60.0).issue(now=5.0)
    restarted = NonceBook(b"secret", 60.0)
    assert restarted.check(parse_credentials(hikvision_authorization("0" * 32, nonce)), 6.0) == (
        NONCE_OK
    )
    other = NonceBook(b"other", 60.0)
    assert other.check(parse_credentials(hikvision_authorization("0" * 32, nonce)), 6.0) == (
        NONCE_INVALID
    )
    forged = nonce[:-1] + ("0" if nonce[-1] != "0" else "1")
    assert restarted.check(parse_credentials(hikvision_authorization("0" * 32, forged)), 6.0) == (
        NONCE_INVALID
    )
    assert restarted.check(parse_credentials(hikvision_authorization("0" * 32, "short")), 6.0) == (
        NONCE_INVALID
    )
    # A nonce "issued" far in the future is not ours to trust.
    future = NonceBook(b"secret", 60.0).issue(now=10_000.0)
    assert restarted.check(parse_credentials(hikvision_authorization("0" * 32, future)), 6.0) == (
        NONCE_INVALID
    )


def test_nonce_book_detects_nc_replay() -> None:
    book = NonceBook(b"k", 60.0)
    nonce = book.issue(0.0)

    def check(nc: str) -> str:
        return book.check(parse_credentials(hikvision_authorization("0" * 32, nonce, nc)), 1.0)

    assert check("00000001") == NONCE_OK
    assert check("00000001") == NONCE_REPLAY
    assert check("00000002") == NONCE_OK
    assert check("00000001") == NONCE_REPLAY
    no_qop = parse_credentials(
        f'Digest username="u", realm="r", nonce="{nonce}", uri="u", response="{"0" * 32}"'
    )
    assert book.check(no_qop, 1.0) == NONCE_OK


def test_nonce_book_memory_is_bounded_oldest_dropped() -> None:
    book = NonceBook(b"k", 60.0, max_tracked=2)
    nonces = [book.issue(0.0) for _ in range(3)]
    for nonce in nonces:
        assert book.check(parse_credentials(hikvision_authorization("0" * 32, nonce)), 1.0) == (
            NONCE_OK
        )
    # The first nonce's counter was forgotten, the last one's is still tracked.
    first = parse_credentials(hikvision_authorization("0" * 32, nonces[0]))
    last = parse_credentials(hikvision_authorization("0" * 32, nonces[2]))
    assert book.check(last, 1.0) == NONCE_REPLAY
    assert book.check(first, 1.0) == NONCE_OK
