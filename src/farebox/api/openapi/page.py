"""`/docs`: the schema as a plain server-rendered page (no script, no CDN, no inline style).

It carries the dashboard's strict Content-Security-Policy (nothing but this origin's images;
here not even those), and escapes every string it shows.
"""

from __future__ import annotations

from html import escape
from typing import Any

CSP = (
    "default-src 'none'; img-src 'self'; style-src 'self'; form-action 'none'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}


def _ref_name(schema: dict[str, Any]) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def _type_text(schema: dict[str, Any]) -> str:
    name = _ref_name(schema)
    if name:
        return f'<a href="#schema-{escape(name)}">{escape(name)}</a>'
    for union in ("anyOf", "oneOf"):
        if union in schema:
            return " | ".join(_type_text(s) for s in schema[union])
    if "enum" in schema:
        return " | ".join(escape(repr(v)) for v in schema["enum"])
    if "const" in schema:
        return escape(repr(schema["const"]))
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type_text(schema.get('items', {}))}"
    return escape(" | ".join(kind) if isinstance(kind, list) else str(kind))


def _schema_table(name: str, schema: dict[str, Any]) -> str:
    props = schema.get("properties", {})
    required = set(schema.get("required", ()))
    rows = "".join(
        f"<tr><td><code>{escape(field)}</code>{' (required)' if field in required else ''}</td>"
        f"<td>{_type_text(prop)}</td><td>{escape(str(prop.get('description', '')))}</td></tr>"
        for field, prop in props.items()
    )
    extra = schema.get("additionalProperties")
    note = "<p>Other fields pass through unchanged.</p>" if extra not in (None, False) else ""
    doc = escape(str(schema.get("description", "")))
    return (
        f'<section id="schema-{escape(name)}"><h3>{escape(name)}</h3><p>{doc}</p>{note}'
        f"<table><tr><th>field</th><th>type</th><th>about</th></tr>{rows}</table></section>"
    )


def _operation(path: str, method: str, op: dict[str, Any]) -> str:
    auth = ", ".join(" ".join(req) for req in op.get("security", ())) or "none"
    params = ", ".join(
        f"<code>{escape(p['name'])}</code> ({escape(p['in'])})" for p in op.get("parameters", ())
    )
    body = ""
    if "requestBody" in op:
        content = op["requestBody"]["content"]
        body = "; ".join(
            f"{escape(media)}: {_type_text(spec.get('schema', {}))}"
            for media, spec in content.items()
        )
    answers = ", ".join(escape(code) for code in op["responses"])
    return (
        f"<tr><td><code>{escape(method.upper())}</code></td><td><code>{escape(path)}</code></td>"
        f"<td>{escape(op.get('summary', ''))}</td><td>{escape(auth)}</td><td>{params}</td>"
        f"<td>{body}</td><td>{answers}</td></tr>"
    )


def render(doc: dict[str, Any]) -> str:
    """The page for an OpenAPI document built by schema.py."""
    by_tag: dict[str, list[str]] = {}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            by_tag.setdefault(op["tags"][0], []).append(_operation(path, method, op))
    head = (
        "<tr><th>method</th><th>path</th><th>what</th><th>auth</th><th>parameters</th>"
        "<th>body</th><th>answers</th></tr>"
    )
    sections = "".join(
        f'<h2 id="tag-{escape(tag)}">{escape(tag)}</h2><table>{head}{"".join(rows)}</table>'
        for tag, rows in by_tag.items()
    )
    schemes = "".join(
        f"<li><code>{escape(name)}</code>: {escape(s.get('description', ''))}</li>"
        for name, s in doc["components"]["securitySchemes"].items()
    )
    schemas = "".join(
        _schema_table(name, schema) for name, schema in doc["components"]["schemas"].items()
    )
    info = doc["info"]
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(info['title'])} API</title></head><body>"
        f"<h1>{escape(info['title'])} API {escape(info['version'])}</h1>"
        f"<p>{escape(info['description'])}</p>"
        '<p>The machine-readable schema: <a href="/openapi.json">/openapi.json</a> '
        "(OpenAPI 3.1).</p>"
        f"<h2>Authentication</h2><ul>{schemes}</ul>{sections}"
        f"<h2>Schemas</h2>{schemas}</body></html>"
    )
