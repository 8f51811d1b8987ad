"""User tokens: HS256 from config, RS256 with a public key; claims are validated."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from hub.auth.tokens import TokenError, TokenVerifier, mint_token

SECRET = "unit-test-secret-0123456789abcdef"


def _claims(**over: object) -> dict[str, object]:
    claims: dict[str, object] = {
        "sub": "u1",
        "org": "d01.s01",
        "roles": ["dispatcher"],
        "exp": int(time.time()) + 60,
    }
    claims.update(over)
    return claims


def test_minted_hs256_token_verifies_to_its_identity() -> None:
    token = mint_token(SECRET, user="u1", org="d01.s01.c02", roles=["grid_leader"], ttl=60)
    identity = TokenVerifier("HS256", SECRET).verify(token)
    assert identity.user == "u1"
    assert identity.org == "d01.s01.c02"
    assert identity.roles == frozenset({"grid_leader"})


def test_rs256_token_verifies_with_the_configured_public_key(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    public = tmp_path / "jwt.pub.pem"
    public.write_bytes(pem)
    token = jwt.encode(_claims(), key, algorithm="RS256")
    identity = TokenVerifier("RS256", "", public).verify(token)
    assert identity.user == "u1"
    # An HS256 token signed with the public key text must not pass (algorithm confusion).
    forged = jwt.encode(_claims(), "not-the-key-but-32-bytes-long-000", algorithm="HS256")
    with pytest.raises(TokenError):
        TokenVerifier("RS256", "", public).verify(forged)


@pytest.mark.parametrize(
    ("over", "fragment"),
    [
        ({"exp": -5}, "expired"),
        ({"roles": ["emperor"]}, "unknown roles"),
        ({"org": "D01..x"}, "org"),
        ({"roles": "dispatcher"}, "roles"),
        ({"sub": ""}, "sub"),
    ],
)
def test_bad_claims_are_refused_with_a_clear_reason(over: dict[str, object], fragment: str) -> None:
    # Built when the test runs, not when it is collected: the tokens live 60 s.
    claims = _claims(**over)
    if "exp" in over:
        claims["exp"] = int(time.time()) + int(str(over["exp"]))
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    with pytest.raises(TokenError) as info:
        TokenVerifier("HS256", SECRET).verify(token)
    assert fragment in str(info.value)


def test_token_signed_with_another_secret_is_refused() -> None:
    token = jwt.encode(_claims(), "another-secret-0123456789abcdefgh", algorithm="HS256")
    with pytest.raises(TokenError) as info:
        TokenVerifier("HS256", SECRET).verify(token)
    assert info.value.code == "auth.invalid_token"


def test_a_verified_token_is_remembered_until_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = TokenVerifier("HS256", SECRET)
    token = jwt.encode(_claims(), SECRET, algorithm="HS256")
    first = verifier.verify(token)
    calls: list[str] = []
    real_decode = jwt.decode

    def counting_decode(*args: object, **kwargs: object) -> object:
        calls.append("decode")
        return real_decode(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(jwt, "decode", counting_decode)
    assert verifier.verify(token) is first
    assert calls == []  # answered from memory, the signature not checked again
    later = time.time() + 120
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(TokenError) as info:
        verifier.verify(token)
    assert info.value.expired


def test_a_refused_token_is_not_remembered() -> None:
    verifier = TokenVerifier("HS256", SECRET)
    forged = jwt.encode(_claims(), "another-secret-0123456789abcdefgh", algorithm="HS256")
    for _ in range(2):
        with pytest.raises(TokenError):
            verifier.verify(forged)
