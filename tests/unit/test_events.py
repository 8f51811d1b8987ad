"""hub/events.py: the typed event classes and ``parse_event_data``."""

from __future__ import annotations

from typing import Any

import pytest

from hub.events import (
    EVENT_TYPES,
    AlertRaised,
    EventData,
    EventValidationError,
    UserChanged,
    parse_event_data,
)
from protocols.envelope import Envelope


def test_every_event_type_is_registered_under_its_own_name_with_a_summary() -> None:
    assert EVENT_TYPES
    for name, cls in EVENT_TYPES.items():
        assert cls.type == name
        assert issubclass(cls, EventData)
        assert cls.summary and cls.__doc__


def test_accepts_valid_external_data() -> None:
    data = parse_event_data(
        "alert.raised",
        {"title": "井盖缺失", "level": "critical", "location": {"lat": 30.6, "lon": 114.4}},
        external=True,
    )
    assert isinstance(data, AlertRaised)
    assert data.level == "critical" and data.location is not None
    announcement = parse_event_data(
        "announcement.published", {"title": "通知", "body": "明天停水"}, external=True
    )
    assert announcement.type == "announcement.published"


def test_internal_types_parse_internally_but_not_from_outside() -> None:
    assert parse_event_data("message.posted", {"text": "hi"}, external=False).type == (
        "message.posted"
    )
    with pytest.raises(EventValidationError, match="unknown event type"):
        parse_event_data("message.posted", {"text": "hi"}, external=True)
    with pytest.raises(EventValidationError, match="unknown event type"):
        parse_event_data("directory.user_changed", {"user_id": "x", "action": "created"},
                         external=True)  # fmt: skip


def test_unknown_type_is_rejected_and_its_name_truncated() -> None:
    with pytest.raises(EventValidationError) as info:
        parse_event_data("x" * 500, {}, external=False)
    assert len(str(info.value)) < 100


@pytest.mark.parametrize(
    ("data", "loc"),
    [
        ({}, "title"),
        ({"title": ""}, "title"),
        ({"title": "t" * 201}, "title"),
        ({"title": "t", "level": "severe"}, "level"),
        ({"title": "t", "colour": "red"}, "colour"),
        ({"title": "t", "location": {"lat": 91, "lon": 0}}, "location.lat"),
        ({"title": "t", "location": {"lat": 0, "lon": 0, "alt": 1}}, "location.alt"),
        ({"title": "t", "description": "d" * 4001}, "description"),
    ],
)
def test_bad_data_is_rejected_with_the_offending_field(data: dict[str, Any], loc: str) -> None:
    with pytest.raises(EventValidationError) as info:
        parse_event_data("alert.raised", data, external=True)
    assert loc in [d["loc"] for d in info.value.details]


@pytest.mark.parametrize("data", [None, [], "title", 42])
def test_data_must_be_an_object(data: Any) -> None:
    with pytest.raises(EventValidationError):
        parse_event_data("alert.raised", data, external=True)


def test_envelope_carries_type_org_subject_and_data_without_nulls() -> None:
    envelope = UserChanged(user_id="u1", action="created").envelope(
        source="hub/directory", org="d01.s01", subject="u1"
    )
    assert envelope.type == "directory.user_changed"
    assert envelope.data == {"user_id": "u1", "action": "created"}
    wire = Envelope.decode(envelope.encode())
    assert wire == envelope
    alert = AlertRaised(title="t").envelope(source="external/x", org="d01")
    assert alert.data == {"title": "t", "level": "info"}  # None fields left out
    assert "subject" not in alert.to_dict()
