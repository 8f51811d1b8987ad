"""How a GeoReport service request becomes one of our cases: category, title, fields."""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from hub.cases.lifecycle import Actor
from hub.cases.models import CaseReport, Location
from protocols.citymgmt import ServiceRequest, format_time

SYSTEM = "citymgmt"
"""``external_system`` of the cases it owns, the report channel and the actor id."""
ROOT_CATEGORY = "citymgmt"
"""Where a service code we do not know lands."""
CATEGORY_BY_SERVICE_CODE: dict[str, str] = {
    "street_vending": "citymgmt.street_vending",      # 占道经营
    "illegal_building": "citymgmt.illegal_building",  # 违章搭建
    "sanitation": "citymgmt.sanitation",              # 环境卫生
    "facilities": "citymgmt.facilities",              # 市政设施损坏
    "parking": "citymgmt.parking",                    # 违规停车
}  # fmt: skip
"""Their service_code → our category (config/case_categories.json). A code that already
is one of our ``citymgmt.*`` categories is taken as it is."""
TITLE_DESCRIPTION_CHARS = 60
SYSTEM_NAME = "智慧城管系统"


def actor(org: str) -> Actor:
    """The actor the city-management system is in our timeline."""
    return Actor(kind="system", id=SYSTEM, org=org, name=SYSTEM_NAME)


def category_for(service_code: str, known: Container[str]) -> str:
    """Our category for their service code; unknown codes → the ``citymgmt`` root."""
    code = CATEGORY_BY_SERVICE_CODE.get(service_code, service_code)
    if code.startswith(ROOT_CATEGORY + ".") and code in known:
        return code
    return ROOT_CATEGORY


def title_for(request: ServiceRequest) -> str:
    """A short title: the service name, and the start of the description."""
    name = request.service_name or request.service_code
    head = request.description[:TITLE_DESCRIPTION_CHARS].strip()
    return (f"{name}：{head}" if head else name)[:200]


def location_of(request: ServiceRequest) -> Location | None:
    """The request's place, if it gave coordinates."""
    if request.lat is None or request.long is None:
        return None
    return Location(lat=request.lat, lon=request.long, address=request.address)


def attributes_for(request: ServiceRequest) -> dict[str, Any]:
    """Their fields we keep on the case without interpreting them."""
    out: dict[str, Any] = {
        "service_code": request.service_code,
        "service_name": request.service_name,
        "status": request.status,
    }
    if request.address and request.lat is None:
        out["address"] = request.address  # an address without coordinates
    if request.media_url:
        out["media_url"] = request.media_url
    if request.requested_datetime is not None:
        out["requested_datetime"] = format_time(request.requested_datetime)
    out.update(request.extra)
    return out


def report_for(request: ServiceRequest, category: str) -> CaseReport:
    """The case report a new request makes."""
    return CaseReport(
        title=title_for(request),
        description=request.description,
        category=category,
        location=location_of(request),
        channel="citymgmt",
        attributes=attributes_for(request),
    )
