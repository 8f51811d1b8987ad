"""The city-management interchange: Open311 GeoReport v2 requests and FixMyStreet-style
request updates, parsed and written without I/O."""

from protocols.citymgmt.georeport import (
    CitymgmtError,
    ServiceRequest,
    format_time,
    parse_request,
    parse_requests,
    parse_time,
    request_to_dict,
)
from protocols.citymgmt.updates import (
    STATUS_BY_STATE,
    STATUSES,
    RequestUpdate,
    encode_update,
    parse_update,
    parse_updates,
    status_for,
    update_to_dict,
)

__all__ = [
    "STATUSES",
    "STATUS_BY_STATE",
    "CitymgmtError",
    "RequestUpdate",
    "ServiceRequest",
    "encode_update",
    "format_time",
    "parse_request",
    "parse_requests",
    "parse_time",
    "parse_update",
    "parse_updates",
    "request_to_dict",
    "status_for",
    "update_to_dict",
]
