"""How a GeoReport request maps onto a case: category, title, kept fields; retry delays."""

from __future__ import annotations

from adapters.citymgmt.mapping import attributes_for, category_for, report_for, title_for
from adapters.citymgmt.outbound import backoff
from protocols.citymgmt import parse_request

KNOWN = {"citymgmt", "citymgmt.street_vending", "citymgmt.parking", "dispute"}


def test_service_codes_map_to_categories_and_unknown_ones_to_the_root() -> None:
    assert category_for("street_vending", KNOWN) == "citymgmt.street_vending"
    assert category_for("citymgmt.parking", KNOWN) == "citymgmt.parking"
    assert category_for("noise", KNOWN) == "citymgmt"
    assert category_for("dispute", KNOWN) == "citymgmt"  # never outside its own tree
    assert category_for("sanitation", KNOWN) == "citymgmt"  # mapped, but not in this tree


def test_a_request_becomes_a_report_with_its_place_and_kept_fields() -> None:
    request = parse_request({
        "service_request_id": "1", "service_code": "parking", "service_name": "违规停车",
        "description": "车辆占用盲道" * 20, "lat": 30.6, "long": 114.3, "address": "和平大道",
        "media_url": "http://example.org/p.jpg", "agency_responsible": "城管局",
    })  # fmt: skip
    report = report_for(request, "citymgmt.parking")
    assert report.title.startswith("违规停车：车辆占用盲道")
    assert len(report.title) <= 200
    assert report.location is not None and report.location.address == "和平大道"
    assert report.channel == "citymgmt"
    assert attributes_for(request)["agency_responsible"] == "城管局"
    assert title_for(parse_request({"service_request_id": "2", "service_code": "x"})) == "x"
    no_place = parse_request({"service_request_id": "3", "service_code": "x", "address": "a"})
    assert report_for(no_place, "citymgmt").location is None
    assert attributes_for(no_place)["address"] == "a"


def test_backoff_grows_and_stays_within_its_cap() -> None:
    for attempt in range(1, 30):
        delay = backoff(attempt, 1.0, 300.0)
        cap = min(300.0, 2 ** (attempt - 1))
        assert cap / 2 <= delay <= cap
