"""The demo's cast, from the demo users file: grid workers, each centre's dispatcher, the
street leaders who send notices, an admin who registers phones."""

from __future__ import annotations

from dataclasses import dataclass

from hub.org.seed import UserSpec

COMMUNITY_DEPTH = 3
STREET_DEPTH = 2


def depth(org: str) -> int:
    """Levels in an org path (d01 is 1, d01.s01.c01 is 3)."""
    return org.count(".") + 1


def under(root: str, org: str) -> bool:
    """True when ``org`` is ``root`` or lies below it."""
    return org == root or org.startswith(root + ".")


@dataclass(frozen=True, slots=True)
class People:
    """Who is who among the demo users."""

    users: tuple[UserSpec, ...]

    def by_id(self, user_id: str) -> UserSpec | None:
        """A user by id."""
        return next((u for u in self.users if u.id == user_id), None)

    def _with(self, role: str) -> list[UserSpec]:
        return [u for u in self.users if u.active and role in u.roles]

    @property
    def grid_workers(self) -> list[UserSpec]:
        """Active grid workers, by id."""
        return sorted(self._with("grid_worker"), key=lambda u: u.id)

    def centre(self, org: str) -> UserSpec | None:
        """Who acts for the centre at ``org``: its dispatcher, else its leader."""
        for role in ("dispatcher", "leader"):
            staff = sorted((u for u in self._with(role) if u.org == org), key=lambda u: u.id)
            if staff:
                return staff[0]
        return None

    def workers_under(self, org: str) -> list[UserSpec]:
        """Grid workers of the subtree of ``org``."""
        return [u for u in self.grid_workers if under(org, u.org)]

    @property
    def street_leaders(self) -> list[UserSpec]:
        """Leaders of street centres (they send the demo's notices)."""
        return sorted(
            (u for u in self._with("leader") if depth(u.org) == STREET_DEPTH), key=lambda u: u.id
        )

    def communities_of(self, street: str) -> list[str]:
        """Community org paths below ``street`` that have people."""
        found = {
            ".".join(u.org.split(".")[:COMMUNITY_DEPTH])
            for u in self.users
            if depth(u.org) >= COMMUNITY_DEPTH and under(street, u.org)
        }
        return sorted(found)

    def admin_over(self, org: str) -> UserSpec | None:
        """An admin whose subtree holds ``org`` (the highest one)."""
        admins = [u for u in self._with("admin") if under(u.org, org)]
        return min(admins, key=lambda u: depth(u.org)) if admins else None
