"""/openapi.json and /docs: every route of the app is described, from the wire models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import jsonschema_rs
import pytest
from starlette.routing import BaseRoute, Mount, Route

from farebox.api.openapi.operations import ALL, Op
from farebox.api.openapi.schema import build_schema, openapi_path
from farebox.sim.server import SimServer

import support
from support import Gateway, database_url, running_gateway


@pytest.fixture(scope="module")
def gateway(sim: SimServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """One SQLite gateway: the schema does not depend on the database."""
    tmp = tmp_path_factory.mktemp("gw")
    with (
        database_url("sqlite", tmp) as url,
        running_gateway(url, support.test_catalog(sim.url)) as gw,
    ):
        yield gw


def app_operations(routes: list[BaseRoute], prefix: str = "") -> set[tuple[str, str]]:
    """(METHOD, path) of every route the app serves, walking into mounts."""
    found: set[tuple[str, str]] = set()
    for route in routes:
        if isinstance(route, Mount):
            found |= app_operations(list(route.routes), prefix + route.path)
        elif isinstance(route, Route):
            for method in route.methods or ("GET",):
                if method != "HEAD" or route.path.startswith("/v1/media/"):
                    found.add((method, openapi_path(prefix + route.path)))
    return found


def schema_operations(doc: dict) -> set[tuple[str, str]]:
    return {(m.upper(), path) for path, item in doc["paths"].items() for m in item}


def test_every_route_of_the_app_is_in_the_schema(gateway: Gateway, c: httpx.Client) -> None:
    doc = c.get("/openapi.json").json()
    served = app_operations(gateway.app.routes)
    described = schema_operations(doc)
    assert served - described == set(), "routes missing from /openapi.json"
    assert described - served == set(), "operations in /openapi.json that no route serves"


def test_a_route_without_an_operation_fails_the_check(gateway: Gateway) -> None:
    """The check above would catch a new route: drop one operation and it shows."""
    doc = build_schema([op for op in ALL if op.path != "/keys/{key_id}"])
    missing = app_operations(gateway.app.routes) - schema_operations(doc)
    assert ("PATCH", "/keys/{key_id}") in missing


def test_schema_is_openapi_3_1_with_auth_and_error_envelope(c: httpx.Client) -> None:
    r = c.get("/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    doc = r.json()
    assert doc["openapi"] == "3.1.0"
    schemes = doc["components"]["securitySchemes"]
    assert {"ApiKeyBearer", "ApiKeyHeader", "CreditId", "AdminToken", "L402", "Payment"} <= set(
        schemes
    )
    assert schemes["ApiKeyHeader"] == {**schemes["ApiKeyHeader"], "in": "header", "name": "api-key"}
    envelope = doc["components"]["schemas"]["ErrorEnvelope"]
    assert envelope["required"] == ["error"]
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert op["responses"]["4XX"] == {"$ref": "#/components/responses/Error"}, (
                method,
                path,
            )
    keys = doc["paths"]["/keys"]["post"]
    assert keys["security"] == [{"CreditId": []}]
    assert keys["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/KeyCreate"
    }
    create = doc["components"]["schemas"]["KeyCreate"]
    assert create["additionalProperties"] is False and create["required"] == ["name"]
    chat = doc["components"]["schemas"]["ChatCompletionRequest"]
    assert chat["additionalProperties"] is True  # unknown fields pass through
    paid = doc["paths"]["/v1/images/generations"]["post"]["security"]
    assert {"L402": []} in paid and {"Payment": []} in paid


def test_every_schema_is_valid_json_schema_2020_12(c: httpx.Client) -> None:
    """OpenAPI 3.1's schema objects are JSON Schema 2020-12 (checked with schemathesis's
    validator, jsonschema-rs)."""
    doc = c.get("/openapi.json").json()
    for schema in doc["components"]["schemas"].values():
        jsonschema_rs.meta.validate(
            {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
        )
    error = {"error": {"message": "m", "type": "t", "param": None, "code": None}}
    envelope = jsonschema_rs.validator_for(
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": "#/components/schemas/ErrorEnvelope",
            "components": doc["components"],
        }
    )
    assert envelope.is_valid(error)
    assert not envelope.is_valid({"detail": "Not Found"})


def test_docs_page_lists_every_operation_offline(c: httpx.Client) -> None:
    r = c.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert "<script" not in r.text and "http://" not in r.text and "https://" not in r.text
    doc = c.get("/openapi.json").json()
    for path in doc["paths"]:
        assert f"<code>{path}</code>" in r.text


def test_operation_table_has_no_duplicates() -> None:
    seen: set[tuple[str, str]] = set()
    for op in ALL:
        key = (op.method, op.path)
        assert key not in seen, key
        seen.add(key)
    assert isinstance(ALL[0], Op)


def test_customer_docs_page_exists() -> None:
    page = Path(__file__).resolve().parents[2] / "docs" / "customers" / "api-schema.md"
    assert "/openapi.json" in page.read_text()
