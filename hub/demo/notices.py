"""Notices through the REST API: a street leader to one of the street's communities,
sometimes urgent."""

from __future__ import annotations

import random
from collections.abc import Callable

from hub.demo.api import DemoApiError, HubApi
from hub.demo.content import NOTICES
from hub.demo.people import People

URGENT_P = 0.3


class NoticeDriver:
    """Sends the demo's notices."""

    def __init__(
        self, api: HubApi, people: People, rng: random.Random, say: Callable[[str], None]
    ) -> None:
        self._api = api
        self._people = people
        self._rng = rng
        self._say = say
        self.sent = 0

    async def send(self) -> None:
        """One notice from a random street leader to one of the street's communities."""
        leaders = [u for u in self._people.street_leaders if self._people.communities_of(u.org)]
        if not leaders:
            return
        leader = self._rng.choice(leaders)
        community = self._rng.choice(self._people.communities_of(leader.org))
        kind, title, body = self._rng.choice(NOTICES)
        level = "urgent" if self._rng.random() < URGENT_P else "normal"
        spec = {
            "kind": kind,
            "level": level,
            "title": title,
            "body": body,
            "targets": {"orgs": [community]},
        }
        try:
            notice = await self._api.request("POST", "/api/v1/notices", leader, spec)
        except DemoApiError as err:
            self._say(f"通知发送失败（{leader.name}）：{err}")
            return
        self.sent += 1
        mark = "【紧急】" if level == "urgent" else ""
        self._say(
            f"通知 {mark}「{title}」{leader.name} → {community}（{notice['recipient_count']} 人）"
        )
