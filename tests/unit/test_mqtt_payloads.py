"""protocols/mqtt: grid-phone topics and payloads (ours and OwnTracks) parse into typed
messages, and every kind of garbage is refused with its reason and nothing else."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.geo import Datum, LatLon, wgs84_to_gcj02
from protocols.mqtt import (
    DEFAULT_MAX_AGE_S,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_SKEW_S,
    Ignored,
    LocationPing,
    PayloadRejected,
    RejectReason,
    Source,
    StatusReport,
    WorkerState,
    parse,
    parse_topic,
    subscription_filters,
)
from protocols.mqtt.fields import TimeWindow, number

NOW = 1_732_350_000.0
LOC = "grid/w-0042/location"
STATUS = "grid/w-0042/status"
OT = "owntracks/w-0042/phone1"


def enc(obj: Any) -> bytes:
    return orjson.dumps(obj)


def ping(**fields: Any) -> dict[str, Any]:
    """A valid grid location object with ``fields`` overriding (None deletes a key)."""
    base: dict[str, Any] = {"lat": 30.63, "lon": 114.39, "acc": 8, "ts": NOW - 5}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def parse_now(topic: str, payload: bytes | memoryview, **kwargs: Any) -> Any:
    return parse(topic, payload, now=NOW, **kwargs)


def rejected(topic: str, payload: bytes, **kwargs: Any) -> PayloadRejected:
    with pytest.raises(PayloadRejected) as info:
        parse_now(topic, payload, **kwargs)
    return info.value


# --- our format -----------------------------------------------------------------------


def test_full_grid_location_keeps_every_field_and_the_three_clocks_apart() -> None:
    payload = ping(alt=21.5, speed=1.2, heading=270, batt=87, created_at=NOW - 2, datum="GCJ-02")
    msg = parse_now(LOC, enc(payload))
    assert msg == LocationPing(
        worker_id="w-0042",
        lat=30.63,
        lon=114.39,
        accuracy_m=8.0,
        altitude_m=21.5,
        speed_mps=1.2,
        heading_deg=270.0,
        battery_pct=87.0,
        fix_time=NOW - 5,
        sent_time=NOW - 2,
        datum=Datum.GCJ02,
        source=Source.GRID,
    )


def test_minimal_grid_location_leaves_optional_fields_none() -> None:
    msg = parse_now(LOC, enc(ping(alt=None, batt=None, datum=None, speed=None)))
    assert isinstance(msg, LocationPing)
    assert (msg.altitude_m, msg.speed_mps, msg.heading_deg, msg.battery_pct) == (None,) * 4
    assert msg.sent_time is None and msg.datum is None


def test_json_null_counts_as_absent_for_optional_fields() -> None:
    msg = parse_now(LOC, enc({**ping(), "alt": None, "datum": None, "created_at": None}))
    assert isinstance(msg, LocationPing) and msg.altitude_m is None and msg.datum is None


@pytest.mark.parametrize("ts", [NOW - 5, (NOW - 5) * 1000, int(NOW - 5), int((NOW - 5) * 1000)])
def test_fix_time_in_seconds_or_milliseconds(ts: float) -> None:
    msg = parse_now(LOC, enc(ping(ts=ts)))
    assert isinstance(msg, LocationPing)
    assert msg.fix_time == pytest.approx(NOW - 5)


def test_timestamp_window_edges_are_inclusive() -> None:
    assert parse_now(LOC, enc(ping(ts=NOW + DEFAULT_MAX_SKEW_S))).fix_time == NOW + 300
    old = NOW - DEFAULT_MAX_AGE_S
    assert parse_now(LOC, enc(ping(ts=old))).fix_time == old
    assert rejected(LOC, enc(ping(ts=NOW + 301))).reason is RejectReason.FUTURE
    assert rejected(LOC, enc(ping(ts=old - 1))).reason is RejectReason.TOO_OLD
    assert rejected(LOC, enc(ping(ts=NOW, created_at=NOW + 3600))).reason is RejectReason.FUTURE


def test_window_parameters_are_honoured() -> None:
    assert rejected(LOC, enc(ping(ts=NOW - 61)), max_age=60).reason is RejectReason.TOO_OLD
    assert rejected(LOC, enc(ping(ts=NOW + 2)), max_skew=1).reason is RejectReason.FUTURE


def test_gcj02_ping_converts_to_wgs84_and_undeclared_datum_uses_the_fallback() -> None:
    true_point = LatLon(30.6300, 114.3900)
    gcj = wgs84_to_gcj02(*true_point)
    msg = parse_now(LOC, enc(ping(lat=gcj[0], lon=gcj[1], datum="gcj02")))
    assert msg.resolved_datum() is Datum.GCJ02
    assert msg.wgs84().lat == pytest.approx(true_point.lat, abs=1e-8)
    assert msg.wgs84().lon == pytest.approx(true_point.lon, abs=1e-8)
    bare = parse_now(LOC, enc(ping(lat=gcj[0], lon=gcj[1])))
    assert bare.wgs84() == LatLon(*gcj)  # no datum, default fallback WGS-84: unchanged
    assert bare.wgs84(Datum.GCJ02).lat == pytest.approx(true_point.lat, abs=1e-8)


def test_status_reports() -> None:
    msg = parse_now(STATUS, enc({"state": "on_duty", "batt": 80, "ts": NOW}))
    assert msg == StatusReport("w-0042", WorkerState.ON_DUTY, 80.0, NOW, Source.GRID)
    # A Last Will is written at connect time: no ts, or an old one, is fine for offline.
    assert parse_now(STATUS, enc({"state": "offline"})).time is None
    assert parse_now(STATUS, enc({"state": "offline", "ts": NOW - 10 * 86400})).state == "offline"
    assert rejected(STATUS, enc({"state": "on_duty"})).reason is RejectReason.MISSING_FIELD
    assert rejected(STATUS, enc({"state": "asleep", "ts": NOW})).reason is RejectReason.BAD_VALUE
    assert rejected(STATUS, enc({"state": 1, "ts": NOW})).reason is RejectReason.BAD_TYPE
    assert rejected(STATUS, enc({"ts": NOW})).reason is RejectReason.MISSING_FIELD
    future = enc({"state": "offline", "ts": NOW + 3600})
    assert rejected(STATUS, future).reason is RejectReason.FUTURE


# --- OwnTracks --------------------------------------------------------------------------


def test_owntracks_location_converts_units_and_keeps_device_and_tid() -> None:
    payload = {
        "_type": "location",
        "lat": 30.62,
        "lon": 114.41,
        "acc": 12,
        "alt": 30,
        "batt": 55,
        "vel": 54,
        "cog": 90,
        "tid": "ZS",
        "tst": int(NOW - 20),
        "created_at": int(NOW - 1),
        "conn": "m",
        "bs": 1,
    }
    msg = parse_now(OT, enc(payload))
    assert isinstance(msg, LocationPing)
    assert msg.source is Source.OWNTRACKS
    assert (msg.worker_id, msg.device, msg.tracker_id) == ("w-0042", "phone1", "ZS")
    assert msg.speed_mps == pytest.approx(15.0)
    assert (msg.heading_deg, msg.altitude_m, msg.battery_pct) == (90.0, 30.0, 55.0)
    assert (msg.fix_time, msg.sent_time) == (NOW - 20, NOW - 1)


def test_owntracks_lwt_is_an_offline_status_even_with_an_old_tst() -> None:
    msg = parse_now(OT, enc({"_type": "lwt", "tst": int(NOW - 30 * 86400)}))
    assert isinstance(msg, StatusReport)
    assert msg.state is WorkerState.OFFLINE and msg.device == "phone1"


@pytest.mark.parametrize("kind", ["transition", "waypoint", "waypoints", "card", "cmd", "steps"])
def test_other_owntracks_types_are_ignored_not_errors(kind: str) -> None:
    msg = parse_now(OT, enc({"_type": kind, "whatever": [1, 2]}))
    assert msg == Ignored(Source.OWNTRACKS, kind, "w-0042", "phone1")


def test_owntracks_subtopics_are_ignored_without_parsing() -> None:
    assert parse_now(OT + "/event", b"\x00not json").kind == "event"
    assert rejected(OT + "/nonsense", b"{}").reason is RejectReason.BAD_TOPIC


def test_owntracks_type_errors() -> None:
    assert rejected(OT, enc({"lat": 1})).reason is RejectReason.MISSING_FIELD
    assert rejected(OT, enc({"_type": 3})).reason is RejectReason.BAD_TYPE
    assert rejected(OT, enc({"_type": "teleport"})).reason is RejectReason.UNKNOWN_TYPE
    no_acc = {"_type": "location", "lat": 30.6, "lon": 114.4, "tst": NOW}
    assert rejected(OT, enc(no_acc)).reason is RejectReason.MISSING_FIELD
    bad_tid = {**no_acc, "acc": 5, "tid": 7}
    assert rejected(OT, enc(bad_tid)).reason is RejectReason.BAD_TYPE


def test_empty_payload_clears_a_retained_message_and_is_ignored() -> None:
    assert parse_now(LOC, b"") == Ignored(Source.GRID, "empty", "w-0042")
    assert parse_now(OT, b"").kind == "empty"


# --- topics -----------------------------------------------------------------------------


def test_topics_and_prefixes() -> None:
    assert parse_topic(LOC).worker_id == "w-0042"
    assert parse_topic("t-1/" + STATUS, prefix="t-1").kind == "status"
    assert parse_now("t-1/" + LOC, enc(ping()), prefix="t-1").worker_id == "w-0042"
    assert rejected(LOC, enc(ping()), prefix="t-1").reason is RejectReason.BAD_TOPIC
    assert subscription_filters() == ["grid/+/location", "grid/+/status", "owntracks/+/+"]
    assert subscription_filters("t-1")[0] == "t-1/grid/+/location"


@pytest.mark.parametrize(
    "topic",
    [
        "grid/w 1/location",
        "grid//location",
        "grid/w1/location/x",
        "grid/w1/track",
        "grid/" + "a" * 65 + "/location",
        "grid/w+/location",
        "grid/wö/location",
        "owntracks/u",
        "owntracks/u/d/event/x",
        "other/w1/location",
        "",
    ],
)
def test_bad_topics_are_refused_without_a_worker_id(topic: str) -> None:
    err = rejected(topic, enc(ping()))
    assert err.reason is RejectReason.BAD_TOPIC and err.worker_id is None


# --- rejections by reason ------------------------------------------------------------------

BIG = 18446744073709551615  # the largest integer orjson decodes as an int


@pytest.mark.parametrize(
    ("payload", "reason", "field"),
    [
        (b"{", RejectReason.NOT_JSON, None),
        (b"\xff\xfe{}", RejectReason.NOT_JSON, None),
        (b'{"lat": NaN}', RejectReason.NOT_JSON, None),
        (b'{"lat": Infinity}', RejectReason.NOT_JSON, None),
        (b'{"lat": 1e400}', RejectReason.NOT_JSON, None),
        (b"[1, 2]", RejectReason.NOT_OBJECT, None),
        (b"null", RejectReason.NOT_OBJECT, None),
        (b'"x"', RejectReason.NOT_OBJECT, None),
        (enc(ping(lat=None)), RejectReason.MISSING_FIELD, "lat"),
        (enc(ping(acc=None)), RejectReason.MISSING_FIELD, "acc"),
        (enc(ping(ts=None)), RejectReason.MISSING_FIELD, "ts"),
        (enc(ping(lat="30.6")), RejectReason.BAD_TYPE, "lat"),
        (enc(ping(lat=True)), RejectReason.BAD_TYPE, "lat"),
        (enc(ping(batt=False)), RejectReason.BAD_TYPE, "batt"),
        (enc(ping(acc=[1])), RejectReason.BAD_TYPE, "acc"),
        (enc(ping(ts="2024-11-23T08:00:00Z")), RejectReason.BAD_TYPE, "ts"),
        (enc(ping(datum=84)), RejectReason.BAD_TYPE, "datum"),
        (enc(ping(datum="nad83")), RejectReason.BAD_VALUE, "datum"),
        (enc(ping(lat=90.0001)), RejectReason.OUT_OF_RANGE, "lat"),
        (enc(ping(lon=-180.5)), RejectReason.OUT_OF_RANGE, "lon"),
        (enc(ping(lat=BIG)), RejectReason.OUT_OF_RANGE, "lat"),
        (enc(ping(acc=-1)), RejectReason.OUT_OF_RANGE, "acc"),
        (enc(ping(acc=1e6)), RejectReason.OUT_OF_RANGE, "acc"),
        (enc(ping(alt=1e5)), RejectReason.OUT_OF_RANGE, "alt"),
        (enc(ping(speed=-0.5)), RejectReason.OUT_OF_RANGE, "speed"),
        (enc(ping(speed=1000)), RejectReason.OUT_OF_RANGE, "speed"),
        (enc(ping(heading=361)), RejectReason.OUT_OF_RANGE, "heading"),
        (enc(ping(batt=101)), RejectReason.OUT_OF_RANGE, "batt"),
        (enc(ping(ts=-1)), RejectReason.OUT_OF_RANGE, "ts"),
        (enc(ping(ts=NOW + 3600)), RejectReason.FUTURE, "ts"),
        (enc(ping(ts=(NOW + 3600) * 1000)), RejectReason.FUTURE, "ts"),
        (enc(ping(ts=0)), RejectReason.TOO_OLD, "ts"),
        (enc(ping(created_at=1)), RejectReason.TOO_OLD, "created_at"),
    ],
)
def test_rejection_reasons(payload: bytes, reason: RejectReason, field: str | None) -> None:
    err = rejected(LOC, payload)
    assert (err.reason, err.field) == (reason, field)
    assert err.worker_id == "w-0042"  # the topic was fine: logs can name the worker
    assert isinstance(err, ValueError) and reason.value in str(err)


def test_size_limit_is_checked_before_anything_else() -> None:
    blob = b"x" * (DEFAULT_MAX_BYTES + 1)
    assert rejected("not/a/topic/at/all", blob).reason is RejectReason.TOO_LARGE
    padded = enc({**ping(), "pad": "y" * 5000})
    assert rejected(LOC, padded).reason is RejectReason.TOO_LARGE
    assert parse_now(LOC, padded, max_bytes=8192).worker_id == "w-0042"
    assert parse_now(LOC, memoryview(enc(ping()))).worker_id == "w-0042"


def test_non_finite_numbers_are_refused_even_if_the_decoder_let_one_through() -> None:
    # orjson never yields NaN/Infinity, but the check must not depend on the decoder.
    for value in (math.nan, math.inf, -math.inf):
        with pytest.raises(PayloadRejected) as info:
            number({"lat": value}, "lat", -90, 90, required=True)
        assert info.value.reason is RejectReason.NOT_FINITE
    with pytest.raises(PayloadRejected) as info:
        number({"x": 10**400}, "x", 0, 1e15, required=True)
    assert info.value.reason is RejectReason.OUT_OF_RANGE
    assert TimeWindow(NOW, 1, 1).now == NOW


# --- fuzzing --------------------------------------------------------------------------------

TOPICS = st.one_of(
    st.sampled_from([LOC, STATUS, OT, OT + "/event", "grid/x/location", "owntracks/a/b"]),
    st.text(max_size=40),
)
JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(),
    st.text(max_size=20),
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
FIELDS = ["lat", "lon", "acc", "alt", "speed", "heading", "batt", "ts", "created_at", "datum"]
FIELDS += ["state", "_type", "tst", "vel", "cog", "tid"]
PLAUSIBLE = st.one_of(
    JSON_VALUES,
    st.floats(min_value=-200, max_value=200),
    st.floats(min_value=NOW - 1e6, max_value=NOW + 1e3),
    st.sampled_from(["location", "lwt", "on_duty", "offline", "gcj02", "bd09", "transition"]),
)


def check_result(msg: object) -> None:
    """Whatever parse returns is one of the three message types, and sane."""
    assert isinstance(msg, LocationPing | StatusReport | Ignored)
    if isinstance(msg, LocationPing):
        assert -90 <= msg.lat <= 90 and -180 <= msg.lon <= 180
        assert math.isfinite(msg.accuracy_m) and msg.accuracy_m >= 0
        assert NOW - DEFAULT_MAX_AGE_S <= msg.fix_time <= NOW + DEFAULT_MAX_SKEW_S
        for value in (msg.altitude_m, msg.speed_mps, msg.heading_deg, msg.battery_pct):
            assert value is None or math.isfinite(value)


@given(TOPICS, st.binary(max_size=DEFAULT_MAX_BYTES + 16))
def test_fuzz_arbitrary_bytes_only_ever_parse_or_reject(topic: str, payload: bytes) -> None:
    try:
        check_result(parse_now(topic, payload))
    except PayloadRejected as err:
        assert isinstance(err.reason, RejectReason)


@given(TOPICS, JSON_VALUES)
def test_fuzz_arbitrary_json_only_ever_parses_or_rejects(topic: str, value: Any) -> None:
    try:
        check_result(parse_now(topic, enc(value)))
    except PayloadRejected as err:
        assert isinstance(err.reason, RejectReason)


@given(
    st.sampled_from([LOC, STATUS, OT]),
    st.dictionaries(st.sampled_from(FIELDS), PLAUSIBLE, max_size=len(FIELDS)),
    st.booleans(),
)
def test_fuzz_near_valid_objects_only_ever_parse_or_reject(
    topic: str, fields: dict[str, Any], start_valid: bool
) -> None:
    base: dict[str, Any] = {}
    if start_valid:
        base = {**ping(), "state": "on_duty", "_type": "location", "tst": NOW - 1}
    try:
        check_result(parse_now(topic, enc({**base, **fields})))
    except PayloadRejected as err:
        assert isinstance(err.reason, RejectReason)
