"""JWT user tokens (HS256 from config; RS256 with a configured public key)."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import jwt

from hub.errors import HubError
from protocols.envelope import EnvelopeError, validate_org_path

VERIFIED_CACHE = 1024
"""Tokens whose verified identity is kept (a browser or system sends the same token with
each request; checking its signature again cost more than handling a small request)."""

ROLES = frozenset({"grid_worker", "grid_leader", "dispatcher", "department", "leader", "admin"})


class TokenError(HubError):
    """A token that is malformed, badly signed or missing claims."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__("auth.token_expired" if expired else "auth.invalid_token", message, 401)
        self.expired = expired


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a connection or request acts as."""

    user: str
    org: str
    roles: frozenset[str]
    expires: int

    def has_any(self, *roles: str) -> bool:
        """True when the identity holds at least one of ``roles``."""
        return not self.roles.isdisjoint(roles)


class TokenVerifier:
    """Checks tokens with the configured algorithm and key."""

    def __init__(self, algorithm: str, secret: str, public_key_file: Path | None = None) -> None:
        self._algorithm = algorithm
        if algorithm == "RS256":
            if public_key_file is None:
                raise HubError("config.invalid", "RS256 needs jwt_public_key_file", 500)
            self._key: str = public_key_file.read_text()
        else:
            self._key = secret
        self._verified: OrderedDict[str, Identity] = OrderedDict()

    def verify(self, token: str) -> Identity:
        """Return the identity in ``token`` or raise TokenError. A token verified before
        is answered from memory until it expires (the most recent tokens are kept)."""
        if not isinstance(token, str) or not token or len(token) > 8192:
            raise TokenError("token missing or too long")
        known = self._verified.get(token)
        if known is not None:
            if known.expires > time.time():
                self._verified.move_to_end(token)
                return known
            del self._verified[token]
            raise TokenError("token expired", expired=True)
        identity = self._decode(token)
        self._verified[token] = identity
        if len(self._verified) > VERIFIED_CACHE:
            self._verified.popitem(last=False)
        return identity

    def _decode(self, token: str) -> Identity:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[self._algorithm],
                options={"require": ["sub", "exp"]},
            )
        except jwt.ExpiredSignatureError as err:
            raise TokenError("token expired", expired=True) from err
        except jwt.PyJWTError as err:
            raise TokenError(f"invalid token: {err}") from err
        return identity_from_claims(claims)


def identity_from_claims(claims: dict[str, object]) -> Identity:
    """Validate the hub's claims: ``sub``, ``org``, ``roles``, ``exp``."""
    sub, org, roles, exp = claims.get("sub"), claims.get("org"), claims.get("roles"), claims["exp"]
    if not isinstance(sub, str) or not sub or len(sub) > 128:
        raise TokenError("claim 'sub' must be a user id")
    if not isinstance(org, str):
        raise TokenError("claim 'org' must be an org path")
    try:
        validate_org_path(org)
    except EnvelopeError as err:
        raise TokenError(f"claim 'org': {err}") from err
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise TokenError("claim 'roles' must be a list of role names")
    unknown = set(roles) - ROLES
    if unknown:
        raise TokenError(f"unknown roles: {', '.join(sorted(unknown))}")
    return Identity(user=sub, org=org, roles=frozenset(roles), expires=int(exp))  # type: ignore[call-overload]


def mint_token(secret: str, *, user: str, org: str, roles: list[str], ttl: int) -> str:
    """Sign an HS256 token for development, tests and the demo."""
    validate_org_path(org)
    unknown = set(roles) - ROLES
    if unknown:
        raise ValueError(f"unknown roles: {', '.join(sorted(unknown))}")
    now = int(time.time())
    claims = {"sub": user, "org": org, "roles": roles, "iat": now, "exp": now + ttl}
    return jwt.encode(claims, secret, algorithm="HS256")
