"""protocols/envelope.py: org paths (validation, ancestors, containment) over random org
trees, and the envelope's JSON round trip."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.envelope import (
    ORG_MAX_DEPTH,
    Envelope,
    EnvelopeError,
    org_ancestors,
    org_contains,
    validate_org_path,
)

# Segment names chosen so that string prefixes collide: s1 / s10 / s11, c1 / c12, ...
SEGMENTS = ["s1", "s10", "s11", "s2", "c1", "c12", "c2", "g1", "g10", "x", "x-1", "x_1"]
ROOTS = ["d1", "d10", "d01", "d1-"]


@st.composite
def org_forests(draw: st.DrawFn, max_depth: int = 4) -> dict[str, str | None]:
    """A random forest of org nodes: path → parent path (None for a root). The parent
    links are the ground truth; they are recorded while building, not derived from the
    path strings."""
    parents: dict[str, str | None] = {}
    frontier: list[tuple[str, int]] = []
    for root in draw(st.lists(st.sampled_from(ROOTS), min_size=1, max_size=2, unique=True)):
        parents[root] = None
        frontier.append((root, 1))
    while frontier:
        path, depth = frontier.pop()
        if depth >= max_depth:
            continue
        children = draw(st.lists(st.sampled_from(SEGMENTS), max_size=3, unique=True))
        for child in children:
            node = f"{path}.{child}"
            parents[node] = path
            frontier.append((node, depth + 1))
    return parents


def tree_ancestors(parents: dict[str, str | None], node: str) -> list[str]:
    """The node and its ancestors, nearest first, by following parent links."""
    chain = []
    current: str | None = node
    while current is not None:
        chain.append(current)
        current = parents[current]
    return chain


@given(org_forests())
def test_ancestors_are_the_parent_chain(parents: dict[str, str | None]) -> None:
    for node in parents:
        assert validate_org_path(node) == node
        assert org_ancestors(node) == tree_ancestors(parents, node)


@given(org_forests())
def test_contains_iff_ancestor_or_self_in_the_tree(parents: dict[str, str | None]) -> None:
    ancestors = {node: set(tree_ancestors(parents, node)) for node in parents}
    for a in parents:
        for b in parents:
            assert org_contains(a, b) is (a in ancestors[b]), (a, b)


@pytest.mark.parametrize(
    ("ancestor", "path", "expected"),
    [
        ("d01.s1", "d01.s10", False),
        ("d01.s1", "d01.s1", True),
        ("d01.s1", "d01.s1.c1", True),
        ("d01.s1", "d01.s1-x", False),
        ("d01.s1", "d01.s1_x.c1", False),
        ("d01.s1.c1", "d01.s1", False),
        ("d1", "d10.s1", False),
        ("d01.s01.c01", "d01.s01.c02", False),
    ],
)
def test_contains_is_segment_wise_not_string_prefix(
    ancestor: str, path: str, expected: bool
) -> None:
    assert org_contains(ancestor, path) is expected


@pytest.mark.parametrize(
    "path",
    [
        "",
        ".",
        "d01.",
        ".d01",
        "d01..s01",
        "D01",
        "d01.S01",
        "1d",
        "d01 s01",
        "d01/s01",
        "d01.s01\n",
        "d01\n.s01",
        "d01.s01\r",
        "d01.s01 ",
        "d01.ｓ01",
        "a" * 33,
        ".".join(["a"] * (ORG_MAX_DEPTH + 1)),
    ],
)
def test_invalid_org_paths_are_rejected(path: str) -> None:
    with pytest.raises(EnvelopeError):
        validate_org_path(path)


@pytest.mark.parametrize("bad", [None, 5, ["d01"], b"d01"])
def test_non_string_org_paths_are_rejected(bad: Any) -> None:
    with pytest.raises(EnvelopeError):
        validate_org_path(bad)


def test_valid_org_paths_at_the_limits() -> None:
    assert validate_org_path("a" * 32)
    assert validate_org_path(".".join(["a"] * ORG_MAX_DEPTH))
    assert validate_org_path("d01.s-1.c_2")


ENVELOPES = st.builds(
    Envelope,
    type=st.sampled_from(["alert.raised", "message.posted"]),
    source=st.text(min_size=1, max_size=20),
    org=st.sampled_from(["d01", "d01.s01", "d01.s01.c01.g01"]),
    data=st.dictionaries(
        st.text(max_size=8), st.text(max_size=8) | st.integers(-(2**53), 2**53), max_size=4
    ),
    subject=st.none() | st.text(min_size=1, max_size=10),
)


@given(ENVELOPES)
def test_envelope_round_trips_through_json(envelope: Envelope) -> None:
    raw = envelope.encode()
    assert orjson.loads(raw)["specversion"] == "1.0"
    assert Envelope.decode(raw) == envelope


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("id"),
        lambda d: d.update(specversion="0.3"),
        lambda d: d.update(org="D01"),
        lambda d: d.update(data=[1]),
        lambda d: d.update(subject=3),
        lambda d: d.update(type=""),
    ],
)
def test_bad_envelopes_are_rejected(mutate: Any) -> None:
    raw = Envelope(type="alert.raised", source="s", org="d01", data={}).to_dict()
    mutate(raw)
    with pytest.raises(EnvelopeError):
        Envelope.from_dict(raw)
    with pytest.raises(EnvelopeError):
        Envelope.decode(b"not json")
