"""Build the OpenAPI 3.1 document from the operation table and the wire models.

OpenAPI 3.1's schema objects are JSON Schema 2020-12, which is what pydantic writes, so each
wire model goes into `components/schemas` as pydantic describes it (requests as validated,
answers as serialised). Every operation answers errors in the one envelope (`4XX`, `5XX`).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from farebox import __version__
from farebox.api.openapi.operations import ALL, SECURITY, Op
from farebox.api.wire.errors import ErrorEnvelope

REF = "#/components/schemas/{model}"
_PARAM = re.compile(r"\{([^}:]+)(?::[^}]+)?\}")

SECURITY_SCHEMES: dict[str, Any] = {
    "ApiKeyBearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "A customer API key: `Authorization: Bearer sk-...`.",
    },
    "ApiKeyHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "api-key",
        "description": "The same key in an `api-key` header (PPQ's form; `x-api-key` works too).",
    },
    "CreditId": {
        "type": "apiKey",
        "in": "header",
        "name": "x-credit-id",
        "description": "The account's credit_id: its password, needed to manage keys.",
    },
    "AdminToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The operator's FAREBOX_ADMIN_TOKEN: `Authorization: Bearer <token>`.",
    },
    "L402": {
        "type": "http",
        "scheme": "L402",
        "description": "Pay per request with no key: a 402 answer carries an L402 challenge "
        "(macaroon and Lightning invoice); pay it and send `Authorization: L402 <mac>:<preimage>`.",
    },
    "Payment": {
        "type": "http",
        "scheme": "Payment",
        "description": "Pay per request with the Payment scheme: answer the 402's "
        "`WWW-Authenticate: Payment` challenge with `Authorization: Payment <credential>`.",
    },
    "Cashu": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Cashu",
        "description": "Pay per request with Cashu ecash (a cashuB token); change comes back "
        "in `X-Cashu`.",
    },
    "SessionCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": "__Host-farebox_session",
        "description": "The dashboard's session (HttpOnly; `farebox_session` on plain http).",
    },
    "ConsoleCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": "__Host-farebox_console",
        "description": "The operator console's session.",
    },
}


def openapi_path(route_path: str) -> str:
    """A Starlette path as OpenAPI writes it: `{path:path}` becomes `{path}`."""
    return _PARAM.sub(r"{\1}", route_path)


def _models(ops: list[Op]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    wanted: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {
        (ErrorEnvelope, "serialization"): None
    }
    for op in ops:
        for model, mode in ((op.body, "validation"), (op.answer, "serialization")):
            if model is not None:
                wanted[(model, mode)] = None  # type: ignore[index]
    return list(wanted)


def _query_parameters(model: type[BaseModel], defs: dict[str, Any]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF, mode="validation")
    required = set(schema.get("required", ()))
    return [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": {
                k: v
                for k, v in prop.items()
                if k not in ("title", "description") and not (k == "default" and v is None)
            },
            **({"description": prop["description"]} if "description" in prop else {}),
        }
        for name, prop in schema.get("properties", {}).items()
    ]


def _body(op: Op, refs: dict[Any, Any]) -> dict[str, Any]:
    content: dict[str, Any]
    if op.body_kind == "bytes":
        content = {"application/octet-stream": {"schema": {}}, "application/json": {"schema": {}}}
    elif op.body_kind == "form":
        content = {"application/x-www-form-urlencoded": {"schema": {"type": "object"}}}
    else:
        media = "multipart/form-data" if op.body_kind == "multipart" else "application/json"
        schema = refs[(op.body, "validation")] if op.body else {"type": "object"}
        content = {media: {"schema": schema}}
    return {"required": op.body_required, "content": content}


def _operation(op: Op, refs: dict[Any, Any], defs: dict[str, Any]) -> dict[str, Any]:
    names = _PARAM.findall(op.path)
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "minLength": 1},
            **({"description": op.path_doc[name]} if name in op.path_doc else {}),
        }
        for name in names
    ]
    if op.query is not None:
        parameters += _query_parameters(op.query, defs)
    answer_schema = refs[(op.answer, "serialization")] if op.answer else {}
    media = {
        op.media_type: {"schema": answer_schema if op.media_type == "application/json" else {}}
    }
    responses: dict[str, Any] = {str(op.status): {"description": "OK", "content": media}}
    for code in op.errors:
        responses[str(code)] = {"$ref": "#/components/responses/Error"}
    responses["4XX"] = {"$ref": "#/components/responses/Error"}
    responses["5XX"] = {"$ref": "#/components/responses/Error"}
    item: dict[str, Any] = {
        "operationId": f"{op.method.lower()}{re.sub(r'[^A-Za-z0-9]+', '_', openapi_path(op.path))}",
        "summary": op.summary,
        "tags": [op.tag],
        "responses": responses,
    }
    if op.description:
        item["description"] = op.description
    if parameters:
        item["parameters"] = parameters
    if op.method in ("POST", "PATCH", "PUT"):
        item["requestBody"] = _body(op, refs)
    if op.auth != "none":
        item["security"] = SECURITY[op.auth]
    return item


def build_schema(ops: list[Op] | None = None, server_url: str | None = None) -> dict[str, Any]:
    """The whole OpenAPI 3.1 document."""
    ops = ALL if ops is None else ops
    refs, top = models_json_schema(_models(ops), ref_template=REF)
    defs: dict[str, Any] = top.get("$defs", {})
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        paths.setdefault(openapi_path(op.path), {})[op.method.lower()] = _operation(op, refs, defs)
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "farebox",
            "version": __version__,
            "description": "A pay-per-query AI gateway: one OpenAI-compatible API, metered to "
            "the nanodollar. Every error answers with the envelope `ErrorEnvelope`.",
        },
        "paths": paths,
        "components": {
            "schemas": defs,
            "securitySchemes": SECURITY_SCHEMES,
            "responses": {
                "Error": {
                    "description": "An error, in the one envelope.",
                    "content": {
                        "application/json": {"schema": refs[(ErrorEnvelope, "serialization")]}
                    },
                }
            },
        },
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc
