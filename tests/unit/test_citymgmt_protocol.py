"""Open311 GeoReport v2 requests and request updates: parsing, writing, status mapping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.cases.lifecycle import State
from protocols.citymgmt import (
    STATUS_BY_STATE,
    STATUSES,
    CitymgmtError,
    RequestUpdate,
    encode_update,
    parse_request,
    parse_requests,
    parse_time,
    parse_update,
    parse_updates,
    request_to_dict,
    status_for,
    update_to_dict,
)

REQUEST = {
    "service_request_id": "638344",
    "status": "open",
    "status_notes": "received",
    "service_name": "占道经营",
    "service_code": "street_vending",
    "description": "Street vendors blocking the pavement",
    "requested_datetime": "2026-11-23T08:00:00+08:00",
    "updated_datetime": "2026-11-23T09:30:00+08:00",
    "address": "和平大道 1 号",
    "lat": 30.6123,
    "long": 114.3512,
    "media_url": "http://example.org/photo.jpg",
}


def test_a_full_request_parses_with_times_in_utc_and_extra_fields_kept() -> None:
    request = parse_request(REQUEST)
    assert request.service_request_id == "638344"
    assert (request.lat, request.long) == (30.6123, 114.3512)
    assert request.updated_datetime == datetime(2026, 11, 23, 1, 30, tzinfo=UTC)
    assert request.version == request.updated_datetime
    assert request.extra == {"status_notes": "received"}


def test_a_request_round_trips_through_its_json_form() -> None:
    request = parse_request(REQUEST)
    assert parse_request(request_to_dict(request)) == request


def test_numeric_ids_are_accepted_as_strings_and_status_defaults_to_open() -> None:
    request = parse_request({"service_request_id": 42, "service_code": "x"})
    assert (request.service_request_id, request.status, request.version) == ("42", "open", None)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"service_request_id": None}, "service_request_id"),
        ({"service_code": ""}, "service_code"),
        ({"lat": 91}, "lat"),
        ({"long": "east"}, "long"),
        ({"long": None}, "long"),
        ({"updated_datetime": "2026-11-23T09:30:00"}, "updated_datetime"),
        ({"requested_datetime": "yesterday"}, "requested_datetime"),
        ({"description": "x" * 8001}, "description"),
        ({"service_name": ["a"]}, "service_name"),
        ({"lat": float("nan")}, "lat"),
    ],
)
def test_bad_requests_are_refused_naming_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(CitymgmtError) as err:
        parse_request({**REQUEST, **change})
    assert err.value.field == field
    assert err.value.detail()["loc"] == field


def test_a_batch_names_the_index_of_its_bad_request() -> None:
    with pytest.raises(CitymgmtError) as err:
        parse_requests([REQUEST, {**REQUEST, "lat": "x"}])
    assert err.value.field == "[1].lat"
    assert len(parse_requests(b'{"service_request_id": "1", "service_code": "a"}')) == 1
    for body in (b"{not json", b"[1]", b'"text"'):
        with pytest.raises(CitymgmtError):
            parse_requests(body)
    with pytest.raises(CitymgmtError, match="more than"):
        parse_requests([REQUEST] * 1001)


def test_times_need_an_offset_and_come_back_in_utc() -> None:
    assert parse_time("2026-11-23T00:00:00Z", "t") == datetime(2026, 11, 23, tzinfo=UTC)
    with pytest.raises(CitymgmtError, match="UTC offset"):
        parse_time("2026-11-23T00:00:00", "t")
    with pytest.raises(CitymgmtError):
        parse_time(20261123, "t")


def test_every_case_state_has_a_known_status_and_the_loop_reads_right() -> None:
    assert set(STATUS_BY_STATE) == {s.value for s in State}
    assert set(STATUS_BY_STATE.values()) <= STATUSES
    assert [status_for(s) for s in ("reported", "registered", "assigned", "handling",
                                    "fed_back", "closed")] == [
        "open", "investigating", "action_scheduled", "in_progress", "fixed", "closed",
    ]  # fmt: skip
    assert status_for("rejected") == "no_further_action"
    with pytest.raises(ValueError, match="no city-management status"):
        status_for("lost")


UPDATE = RequestUpdate(
    update_id="01JD0000000000000000000000",
    service_request_id="638344",
    status="in_progress",
    updated_datetime=datetime(2026, 11, 23, 2, 0, tzinfo=UTC),
    description="handler on site",
    external_status_code="handling",
)


def test_an_update_round_trips_and_omits_what_it_lacks() -> None:
    wire = update_to_dict(UPDATE)
    assert "media_url" not in wire
    assert wire["updated_datetime"] == "2026-11-23T02:00:00+00:00"
    assert parse_update(wire) == UPDATE
    assert parse_updates(encode_update(UPDATE)) == [UPDATE]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"status": "lost"}, "status"),
        ({"update_id": ""}, "update_id"),
        ({"updated_datetime": None}, "updated_datetime"),
        ({"service_request_id": None}, "service_request_id"),
    ],
)
def test_bad_updates_are_refused_naming_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(CitymgmtError) as err:
        parse_update({**update_to_dict(UPDATE), **change})
    assert err.value.field == field
    with pytest.raises(CitymgmtError) as batch:
        parse_updates([update_to_dict(UPDATE), {**update_to_dict(UPDATE), **change}])
    assert batch.value.field == f"[1].{field}"


@given(
    st.datetimes(timezones=st.just(timezone(timedelta(hours=8)))),
    st.text(max_size=200),
    st.sampled_from(sorted(STATUSES)),
)
def test_any_update_survives_the_wire(when: datetime, text: str, status: str) -> None:
    update = RequestUpdate("u1", "r1", status, when, text.strip())
    parsed = parse_update(update_to_dict(update))
    assert parsed.updated_datetime == when
    assert parsed.status == status
    assert parsed.description == text.strip()
