"""The OpenAPI and AsyncAPI documents: served, structurally sound, complete (every route,
every event type, every error code the code raises), and generated rather than written."""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import pytest
from aiohttp import web

from hub.api.asyncapi import EventEnvelope, build_asyncapi
from hub.api.docs import OPERATIONS
from hub.api.error_codes import ERROR_CODES
from hub.api.errors import HTTP_CODES
from hub.api.openapi import build_openapi, route_keys
from hub.events import EVENT_TYPES, EventData
from protocols.envelope import Envelope
from tests.conftest import RunningHub

HUB_SOURCE = Path(__file__).resolve().parents[3] / "hub"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
CODE_SHAPE = re.compile(r"^[a-z_]+(\.[a-z_]+)*$")


async def fetch(running_hub: RunningHub, path: str) -> dict[str, Any]:
    """GET a JSON document."""
    async with aiohttp.ClientSession() as http, http.get(running_hub.url + path) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/json"
        doc: dict[str, Any] = await resp.json()
        return doc


def refs(node: Any) -> Iterator[str]:
    """Every ``$ref`` value in a JSON document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def resolve(doc: dict[str, Any], ref: str) -> Any:
    """Follow a local JSON pointer."""
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"dangling $ref {ref}"
        node = node[part]
    return node


async def test_openapi_documents_every_registered_route(sqlite_hub: RunningHub) -> None:
    doc = await fetch(sqlite_hub, "/api/v1/openapi.json")
    assert doc["openapi"].startswith("3.1")
    assert doc["info"]["title"] and doc["info"]["version"]
    assert "x-undocumented-routes" not in doc, doc["x-undocumented-routes"]
    keys = list(route_keys(sqlite_hub.app))
    assert len(keys) >= 17
    for method, path in keys:
        doc_path = re.sub(r"\{([^}:]+)(:[^}]*)?\}", r"{\1}", path)
        assert method.lower() in doc["paths"].get(doc_path, {}), f"{method} {path} undocumented"
    documented = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    assert documented == set(keys)  # and nothing documented that is not served
    for required in [
        "/api/v1/events", "/api/v1/users", "/api/v1/users/{id}", "/api/v1/org/nodes",
        "/api/v1/org/nodes/{path}", "/healthz", "/readyz", "/metrics", "/connection/websocket",
        "/api/v1/openapi.json", "/api/v1/asyncapi.json", "/", "/static/{filename}",
    ]:  # fmt: skip
        assert required in doc["paths"], required


async def test_openapi_is_structurally_sound(sqlite_hub: RunningHub) -> None:
    doc = await fetch(sqlite_hub, "/api/v1/openapi.json")
    for ref in refs(doc):
        resolve(doc, ref)
    assert not any("$defs" in s for s in doc["components"]["schemas"].values())
    ids = []
    for path, item in doc["paths"].items():
        params_in_path = set(re.findall(r"\{([^}]+)\}", path))
        for method, op in item.items():
            assert method in HTTP_METHODS
            ids.append(op["operationId"])
            assert op["summary"] and op["responses"]
            for status in op["responses"]:
                assert re.fullmatch(r"[1-5]\d\d", status), (path, status)
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == params_in_path, (method, path)
            for scheme in (s for req in op["security"] for s in req):
                assert scheme in doc["components"]["securitySchemes"]
    assert len(ids) == len(set(ids))


async def test_openapi_describes_ingest_and_its_errors(sqlite_hub: RunningHub) -> None:
    doc = await fetch(sqlite_hub, "/api/v1/openapi.json")
    op = doc["paths"]["/api/v1/events"]["post"]
    assert op["security"] == [{"apiKey": [], "timestamp": [], "signature": []}]
    schemes = doc["components"]["securitySchemes"]
    assert {schemes[s]["name"] for s in ("apiKey", "timestamp", "signature")} == {
        "X-Api-Key", "X-Timestamp", "X-Signature",
    }  # fmt: skip
    assert any(p["name"] == "Idempotency-Key" for p in op["parameters"])
    body = op["requestBody"]["content"]["application/json"]["schema"]
    assert resolve(doc, body["allOf"][0]["$ref"])["properties"]["data"]
    variants = {v["properties"]["type"]["const"]: v for v in body["oneOf"]}
    assert set(variants) == {t for t, cls in EVENT_TYPES.items() if cls.external}
    for variant in variants.values():
        assert resolve(doc, variant["properties"]["data"]["$ref"])["properties"]
    accepted = op["responses"]["202"]["content"]["application/json"]["schema"]
    assert set(resolve(doc, accepted["$ref"])["properties"]) == {"id", "status", "channels"}
    codes = {c for r in op["responses"].values() for c in r.get("x-error-codes", [])}
    assert codes >= {
        "auth.missing", "auth.unknown_key", "auth.stale_timestamp", "auth.bad_timestamp",
        "auth.bad_signature", "auth.replayed", "request.invalid_json", "event.invalid",
        "auth.org_forbidden", "event.unknown_org", "request.too_large", "idempotency.conflict",
    }  # fmt: skip
    for status, response in op["responses"].items():
        for code in response.get("x-error-codes", []):
            assert ERROR_CODES[code].status == int(status)
            assert code in response["content"]["application/json"]["examples"]
    assert set(doc["x-error-codes"]) == set(ERROR_CODES)


async def test_openapi_directory_operations_say_who_may_call(sqlite_hub: RunningHub) -> None:
    doc = await fetch(sqlite_hub, "/api/v1/openapi.json")
    users = doc["paths"]["/api/v1/users"]
    assert users["get"]["security"] == [{"bearer": []}]
    assert "403" in users["post"]["responses"] and "422" in users["post"]["responses"]
    assert "Admins only" in users["post"]["description"]
    assert "Any signed-in user may read" in users["get"]["description"]
    query = {p["name"] for p in users["get"]["parameters"] if p["in"] == "query"}
    assert query == {"org", "role", "active", "q", "limit", "cursor"}
    page = resolve(
        doc, users["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    )
    assert set(page["properties"]) == {"items", "next_cursor"}
    patch = doc["paths"]["/api/v1/users/{id}"]["patch"]["requestBody"]["content"]
    patch_schema = resolve(doc, patch["application/json"]["schema"]["$ref"])
    assert patch_schema["additionalProperties"] is False
    assert set(patch_schema["properties"]) == {"name", "title", "phone", "org", "roles", "active"}


def test_an_unregistered_operation_is_reported() -> None:
    app = web.Application()

    async def handler(request: web.Request) -> web.Response:
        return web.Response()

    app.router.add_get("/healthz", handler)
    app.router.add_post("/api/v1/secret", handler)
    doc = build_openapi(app, OPERATIONS)
    assert doc["x-undocumented-routes"] == ["POST /api/v1/secret"]
    assert list(doc["paths"]) == ["/healthz"]


async def test_asyncapi_has_server_channels_and_a_message_per_event_type(
    sqlite_hub: RunningHub,
) -> None:
    doc = await fetch(sqlite_hub, "/api/v1/asyncapi.json")
    assert doc["asyncapi"] == "3.0.0"
    assert doc["info"]["title"] and doc["info"]["version"]
    server = doc["servers"]["hub"]
    assert server["protocol"] == "ws" and server["pathname"] == "/connection/websocket"
    assert server["host"] == sqlite_hub.url.removeprefix("http://")
    assert "Centrifugo" in server["description"]
    assert resolve(doc, server["security"][0]["$ref"])["bearerFormat"] == "JWT"
    addresses = {c["address"] for c in doc["channels"].values()}
    assert addresses == {"org:{path}", "user:{id}", "case:{id}", "camera:{id}", "room:{id}"}
    for kind, prefix in (("case", "case."), ("camera", "camera."), ("room", "consultation.")):
        channel = doc["channels"][kind]
        assert "Readable by" in channel["description"]
        assert channel["messages"] and all(t.startswith(prefix) for t in channel["messages"])
    for ref in refs(doc):
        resolve(doc, ref)
    messages = doc["components"]["messages"]
    for event_type, cls in EVENT_TYPES.items():
        message = messages[event_type]
        assert message["summary"] == cls.summary
        envelope, specific = message["payload"]["allOf"]
        assert resolve(doc, envelope["$ref"])["properties"]["specversion"]["const"] == "1.0"
        assert specific["properties"]["type"] == {"const": event_type}
        data = resolve(doc, specific["properties"]["data"]["$ref"])
        assert set(data["properties"]) == set(cls.model_fields)
        assert event_type in doc["channels"]["org"]["messages"]
    sent = doc["operations"]["sendOrgEvents"]
    assert sent["action"] == "send"
    assert len(sent["messages"]) == len(EVENT_TYPES)
    for operation in doc["operations"].values():
        channel = resolve(doc, operation["channel"]["$ref"])
        for ref in operation["messages"]:
            assert resolve(doc, ref["$ref"]) is not None
            assert ref["$ref"].startswith(operation["channel"]["$ref"] + "/messages/")
            assert channel is not None


def test_adding_an_event_class_adds_its_message(monkeypatch: pytest.MonkeyPatch) -> None:
    class DoorOpened(EventData):
        """A test-only event type."""

        type: ClassVar[str] = "door.opened"
        summary: ClassVar[str] = "A door opened."

        door: str

    monkeypatch.setitem(EVENT_TYPES, DoorOpened.type, DoorOpened)
    doc = build_asyncapi("hub.example:8000")
    assert doc["components"]["messages"]["door.opened"]["summary"] == "A door opened."
    assert doc["components"]["schemas"]["DoorOpened"]["properties"]["door"]


def test_envelope_schema_matches_the_wire_envelope() -> None:
    envelope = Envelope(type="alert.raised", source="external/x", org="d01", data={"a": 1})
    for wire in (envelope.to_dict(), dataclasses.replace(envelope, subject="s").to_dict()):
        EventEnvelope.model_validate(wire)
    fields = {f.name for f in dataclasses.fields(Envelope)} | {"specversion"}
    assert set(EventEnvelope.model_fields) == fields


def _raised_codes() -> Iterator[tuple[str, str]]:
    """(file, code) for each error-code literal given to an ``*Error(...)`` call, a
    ``super().__init__(...)`` of an error class or ``error_response`` in hub/."""
    event_types = set(EVENT_TYPES)
    for path in sorted(HUB_SOURCE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if not (name.endswith("Error") or name in ("__init__", "error_response")):
                continue
            for arg in node.args:
                for const in ast.walk(arg):
                    if (
                        isinstance(const, ast.Constant)
                        and isinstance(const.value, str)
                        and "." in const.value
                        and CODE_SHAPE.match(const.value)
                        and const.value not in event_types
                    ):
                        yield str(path.relative_to(HUB_SOURCE.parent)), const.value


def test_every_error_code_the_hub_raises_is_catalogued() -> None:
    found = list(_raised_codes())
    assert len(found) > 20  # the scan does see the code base
    missing = sorted({f"{file}: {code}" for file, code in found if code not in ERROR_CODES})
    assert not missing, f"add these to hub/api/error_codes.py: {missing}"
    assert set(HTTP_CODES.values()) <= set(ERROR_CODES)
