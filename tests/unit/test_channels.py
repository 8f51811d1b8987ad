"""hub/auth/channels.py: channel parsing and the permission rule, as properties over random
org trees (ARCHITECTURE.md, "Channels and permissions")."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.auth.channels import (
    MAX_CHANNEL_LENGTH,
    PUBLISH_ROLES,
    Action,
    Channel,
    ChannelError,
    allowed,
    org_channel,
    parse_channel,
    user_channel,
)
from hub.auth.tokens import ROLES, Identity
from tests.unit.test_envelope import org_forests, tree_ancestors

ACTIONS = st.sampled_from(list(Action))
ROLE_SETS = st.frozensets(st.sampled_from(sorted(ROLES)), min_size=1, max_size=2)


def identity(
    org: str, roles: frozenset[str] = frozenset({"dispatcher"}), user: str = "u1"
) -> Identity:
    return Identity(user=user, org=org, roles=roles, expires=2**31)


@given(org_forests(), ROLE_SETS)
def test_org_channel_allowed_iff_user_org_is_the_node_or_an_ancestor(
    parents: dict[str, str | None], roles: frozenset[str]
) -> None:
    ancestors = {node: set(tree_ancestors(parents, node)) for node in parents}
    may_publish = not roles.isdisjoint(PUBLISH_ROLES)
    for target in parents:
        channel = parse_channel(org_channel(target))
        assert channel == Channel("org", target)
        for user_org in parents:
            who = identity(user_org, roles)
            in_subtree = user_org in ancestors[target]
            for action in Action:
                expected = in_subtree and (action is not Action.PUBLISH or may_publish)
                assert allowed(who, channel, action) is expected, (user_org, target, action)


@given(org_forests(), st.data())
def test_never_a_sibling_cousin_or_parent_subtree(
    parents: dict[str, str | None], data: st.DataObject
) -> None:
    """The other side of the rule: a node outside the user's subtree is refused for every
    action and every role, whatever string prefix the two paths share."""
    nodes = sorted(parents)
    user_org = data.draw(st.sampled_from(nodes))
    outside = [n for n in nodes if user_org not in tree_ancestors(parents, n)]
    for target in outside:
        for action in Action:
            who = identity(user_org, frozenset(ROLES))
            assert not allowed(who, Channel("org", target), action), (user_org, target)


@pytest.mark.parametrize(
    ("user_org", "target"),
    [
        ("d01.s1", "d01.s10"),
        ("d01.s1", "d01.s1-a"),
        ("d01.s01.c01", "d01.s01.c02"),
        ("d01.s01.c01", "d01.s01.c010"),
        ("d01.s01.c01", "d01.s01"),
        ("d01.s01.c01", "d01"),
        ("d1", "d10"),
    ],
)
def test_string_prefix_is_not_containment(user_org: str, target: str) -> None:
    who = identity(user_org, frozenset({"admin"}))
    for action in Action:
        assert not allowed(who, parse_channel(f"org:{target}"), action)


@given(st.text(min_size=1, max_size=30), st.text(min_size=1, max_size=30), ACTIONS)
def test_user_channel_only_for_that_user_and_never_publish(
    me: str, other: str, action: Action
) -> None:
    who = identity("d01", frozenset(ROLES), user=me)
    mine = Channel("user", me)
    assert allowed(who, mine, action) is (action is not Action.PUBLISH)
    if other != me:
        assert not allowed(who, Channel("user", other), action)


@pytest.mark.parametrize("kind", ["case", "camera", "room"])
def test_per_object_channels_are_closed_until_their_services_grant_them(kind: str) -> None:
    who = identity("d01", frozenset(ROLES))
    for action in Action:
        assert not allowed(who, parse_channel(f"{kind}:1"), action)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "org",
        "org:",
        ":x",
        "foo:bar",
        "ORG:d01",
        "org:D01",
        "org:d01..s01",
        "org:d01.",
        "org:d01.s01\n",
        "user:",
        "user:a b",
        "user:a:b",
        "user:a\nb",
        "user:\x00",
        "org:" + "a" * (MAX_CHANNEL_LENGTH),
    ],
)
def test_bad_channel_names_are_refused(name: str) -> None:
    with pytest.raises(ChannelError):
        parse_channel(name)


@pytest.mark.parametrize("name", [None, 5, b"org:d01", ["org:d01"]])
def test_non_string_channel_names_are_refused(name: Any) -> None:
    with pytest.raises(ChannelError):
        parse_channel(name)


@given(st.text(max_size=300))
def test_parse_channel_raises_only_channel_error(name: str) -> None:
    try:
        channel = parse_channel(name)
    except ChannelError:
        return
    assert channel.name == name
    assert channel.kind in {"org", "user", "case", "camera", "room"}


def test_user_channel_round_trips() -> None:
    assert parse_channel(user_channel("s01-dispatcher")) == Channel("user", "s01-dispatcher")
