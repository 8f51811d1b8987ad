"""The OpenAPI 3.1 document, built from the app's router and the ``Operation`` of each route.

The builder walks ``app.router`` when asked, so it documents what is really registered; a
route with no ``Operation`` is listed under ``x-undocumented-routes`` (and a test fails on
it). Schemas come from the pydantic models (``models_json_schema``), their ``$defs`` placed
under ``components/schemas``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from importlib import metadata
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from hub.api.error_codes import ERROR_CODES, ErrorResponse, codes_by_status
from hub.api.operations import Operation, RouteKey

OPENAPI_VERSION = "3.1.0"
REF_TEMPLATE = "#/components/schemas/{model}"
PATH_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
ModelKey = tuple[type[BaseModel], JsonSchemaMode]
IMPLICIT_API_ERRORS = ("internal",)  # any /api/ endpoint may fail unexpectedly

SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A user token: claims `sub` (user id), `org` (org path), `roles`, `exp`.",
    },
    "apiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Api-Key",
        "description": "The external system's key id (configured in `api_keys`).",
    },
    "timestamp": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Timestamp",
        "description": "Unix seconds; must be within the signature window of the hub's clock.",
    },
    "signature": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Signature",
        "description": (
            "`sha256=` + hex(HMAC-SHA256(secret, `<X-Timestamp>.` + raw body bytes)) "
            "(protocols/signing.py). Single use: sending the same signed request twice "
            "is a replay; a retry must be signed again."
        ),
    },
}
SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "none": [],
    "bearer": [{"bearer": []}],
    "signature": [{"apiKey": [], "timestamp": [], "signature": []}],
}


def hub_version() -> str:
    """The installed package version (a source checkout without metadata: 0.0.0)."""
    try:
        return metadata.version("grid-hub")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def route_keys(app: web.Application) -> Iterator[RouteKey]:
    """Every (method, path) the app serves, as documented: HEAD twins of GET routes are
    implied, a static directory is ``<prefix>/{filename}``."""
    seen: set[RouteKey] = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        resource = route.resource
        if resource is None:
            continue
        path = resource.canonical
        if isinstance(resource, web.StaticResource):
            path = path.rstrip("/") + "/{filename}"
        key = (route.method, path)
        if key not in seen:
            seen.add(key)
            yield key


def build_openapi(app: web.Application, operations: Mapping[RouteKey, Operation]) -> dict[str, Any]:
    """The OpenAPI document for every route ``app`` registers."""
    keys = list(route_keys(app))
    documented = [(key, operations[key]) for key in keys if key in operations]
    refs, components = _schemas(op for _, op in documented)
    paths: dict[str, dict[str, Any]] = {}
    for (method, path), op in documented:
        doc_path = PATH_PARAM.sub(r"{\1}", path)
        paths.setdefault(doc_path, {})[method.lower()] = _operation(method, path, op, refs)
    components["ErrorCode"] = {
        "type": "string",
        "enum": sorted(ERROR_CODES),
        "description": "Every error code the API returns; see x-error-codes for meanings.",
    }
    doc: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Grid Hub HTTP API",
            "version": hub_version(),
            "description": (
                "Real-time integration hub for grid-based social-governance command centres. "
                'Errors are JSON `{"error": {"code", "message", "details"?}}`; the '
                "codes are listed under `x-error-codes`. Every GET endpoint also answers "
                "HEAD. Live events are described by the AsyncAPI document at "
                "/api/v1/asyncapi.json."
            ),
        },
        "servers": [{"url": "/"}],
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": components, "securitySchemes": SECURITY_SCHEMES},
        "tags": [{"name": t} for t in sorted({op.tag for _, op in documented})],
        "x-error-codes": {
            code: {"status": ec.status, "description": ec.description}
            for code, ec in sorted(ERROR_CODES.items())
        },
    }
    missing = [f"{m} {p}" for m, p in keys if (m, p) not in operations]
    if missing:
        doc["x-undocumented-routes"] = missing
    return doc


def _schemas(
    ops: Iterator[Operation],
) -> tuple[dict[ModelKey, dict[str, Any]], dict[str, Any]]:
    """JSON schemas of every model the operations use, as refs into components/schemas."""
    wanted: dict[ModelKey, None] = {(ErrorResponse, "serialization"): None}
    for op in ops:
        if op.body is not None:
            wanted[(op.body, "validation")] = None
        for model in op.models:
            wanted[(model, "validation")] = None
        for reply in op.replies.values():
            if reply.model is not None:
                wanted[(reply.model, "serialization")] = None
    refs, top = models_json_schema(list(wanted), ref_template=REF_TEMPLATE)
    return {key: refs[key] for key in wanted}, dict(top.get("$defs", {}))


def _operation(
    method: str,
    path: str,
    op: Operation,
    refs: Mapping[ModelKey, dict[str, Any]],
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": _operation_id(method, path),
        "summary": op.summary,
        "tags": [op.tag],
        "security": SECURITY[op.auth],
    }
    if op.description:
        out["description"] = op.description
    params = _path_params(path, op) + _query_params(op) + [
        {"name": h.name, "in": "header", "required": h.required, "description": h.description,
         "schema": h.schema}
        for h in op.headers
    ]  # fmt: skip
    if params:
        out["parameters"] = params
    body = op.body_schema
    if body is None and op.body is not None:
        body = refs[(op.body, "validation")]
    if body is not None:
        out["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body}},
        }
    responses: dict[str, Any] = {}
    for status, reply in sorted(op.replies.items()):
        response: dict[str, Any] = {"description": reply.description}
        content = refs[(reply.model, "serialization")] if reply.model is not None else reply.schema
        if content is not None:
            response["content"] = {reply.content_type: {"schema": content}}
        if reply.headers:
            response["headers"] = {
                name: {"description": text, "schema": {"type": "string"}}
                for name, text in reply.headers.items()
            }
        responses[str(status)] = response
    errors = list(op.errors)
    if path.startswith("/api/"):
        errors += [c for c in IMPLICIT_API_ERRORS if c not in errors]
    error_ref = refs[(ErrorResponse, "serialization")]
    for status, codes in codes_by_status(errors).items():
        responses[str(status)] = {
            "description": "\n".join(f"- `{c}`: {ERROR_CODES[c].description}" for c in codes),
            "content": {
                "application/json": {
                    "schema": error_ref,
                    "examples": {
                        c: {
                            "summary": ERROR_CODES[c].description,
                            "value": {"error": {"code": c, "message": ERROR_CODES[c].description}},
                        }
                        for c in codes
                    },
                }
            },
            "x-error-codes": codes,
        }
    out["responses"] = responses
    out.update(op.extra)
    return out


def _operation_id(method: str, path: str) -> str:
    words = re.findall(r"[A-Za-z0-9]+", PATH_PARAM.sub(r"by_\1", path))
    return method.lower() + "".join(w[:1].upper() + w[1:] for w in words if w not in ("api", "v1"))


def _path_params(path: str, op: Operation) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": op.path_params.get(name, name),
            "schema": {"type": "string"},
        }
        for name in PATH_PARAM.findall(path)
    ]


def _not_null(prop: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or a value, never null: ``anyOf[X, null]`` → X."""
    variants = prop.get("anyOf")
    if isinstance(variants, list):
        rest = [v for v in variants if v != {"type": "null"}]
        if len(rest) == 1:
            out = {k: v for k, v in prop.items() if k not in ("anyOf", "default")}
            return {**rest[0], **out}
    return dict(prop)


def _query_params(op: Operation) -> list[dict[str, Any]]:
    if op.query is None:
        return []
    schema = op.query.model_json_schema(mode="validation")
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema.get("properties", {}).items():
        prop = _not_null(prop)
        description = prop.pop("description", "")
        prop.pop("title", None)
        params.append(
            {
                "name": name,
                "in": "query",
                "required": name in required,
                "description": description,
                "schema": prop,
            }
        )
    return params
