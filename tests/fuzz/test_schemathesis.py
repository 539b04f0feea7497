"""Schemathesis against a live gateway, from its own /openapi.json: no 5xx on any operation,
every 4xx in our error envelope, and the ledger balanced afterwards.

Bounded: MAX_EXAMPLES examples per operation, derandomized (the same cases on every run), each
with a deadline, against one SQLite gateway on loopback with a funded customer key, the
account's credit_id and the admin token. The dashboard's HTML pages (CSRF-protected forms) are
left out; everything else in the schema is called.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from farebox.api.openapi.schema import build_schema
from farebox.api.wire.errors import is_envelope
from farebox.modalities.demo import with_media
from farebox.sim.server import SimServer

import support
from data_support import data_test_catalog
from media_support import media_catalog
from support import ADMIN_TOKEN, Gateway, database_url, running_gateway

pytestmark = pytest.mark.slow
MAX_EXAMPLES = int(os.environ.get("FAREBOX_FUZZ_EXAMPLES", "6"))
"""Per operation and mode. CI keeps the default (about a minute); raise it to hunt locally."""
DEADLINE_MS = 10_000
FUNDS_USD = 50
HTML_TAGS = ("dashboard", "console")


@dataclass
class Credentials:
    api_key: str
    credit_id: str


@pytest.fixture(scope="module")
def gateway(sim: SimServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("fuzz")
    catalog = with_media(support.test_catalog(sim.url), media_catalog(sim.url))
    with (
        database_url("sqlite", tmp) as url,
        running_gateway(
            url,
            catalog,
            data_test_catalog(sim.url),
            extra_env={"FAREBOX_MEDIA_DIR": str(tmp / "media")},
        ) as gw,
    ):
        yield gw


@pytest.fixture(scope="module")
def credentials(gateway: Gateway) -> Credentials:
    credit_id, api_key = gateway.create_account(FUNDS_USD)
    return Credentials(api_key, credit_id)


SCHEMA = schemathesis.openapi.from_dict(build_schema())
"""The schema the gateway serves (the test below checks that it is the same document)."""
OPERATIONS = [
    (method.upper(), path)
    for path, item in SCHEMA.raw_schema["paths"].items()
    for method, op in item.items()
    if op["tags"][0] not in HTML_TAGS
]


def test_the_fuzzed_schema_is_the_served_one(gateway: Gateway) -> None:
    with gateway.client() as c:
        assert c.get("/openapi.json").json() == SCHEMA.raw_schema


BROKEN_ON_PURPOSE = ("failing", "busy", "dead")
"""Test models whose every upstream answers 503 or cannot be reached: their 5xx is right."""
PATH_MODEL_TYPES = {
    "chat/completions": "chat",
    "messages": "chat",
    "embeddings": "embedding",
    "images/": "image",
    "audio/speech": "speech",
    "audio/transcriptions": "audio",
    "videos": "video",
}


def real_model(gateway: Gateway, path: str, pick: int) -> str | None:
    """A catalog model of the kind `path` serves (random ids would only ever meet a 404)."""
    kind = next((k for fragment, k in PATH_MODEL_TYPES.items() if fragment in path), None)
    ids = sorted(
        m.id
        for m in gateway.services.catalog.models.values()
        if m.type == kind and not m.id.startswith(BROKEN_ON_PURPOSE)
    )
    return ids[pick % len(ids)] if ids else None


def auth_headers(case: Any, creds: Credentials) -> dict[str, str]:
    """The credential each operation's security names (the first that applies)."""
    security = case.operation.definition.raw.get("security") or []
    names = {name for requirement in security for name in requirement}
    if "AdminToken" in names:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    headers: dict[str, str] = {}
    if "CreditId" in names:
        headers["x-credit-id"] = creds.credit_id
    if "ApiKeyBearer" in names and "CreditId" not in names:
        headers["Authorization"] = f"Bearer {creds.api_key}"
    return headers


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_error_and_every_4xx_in_the_envelope(
    gateway: Gateway, credentials: Credentials, method: str, path: str, mode: GenerationMode
) -> None:
    operation = SCHEMA[path][method]

    @given(case=operation.as_strategy(generation_mode=mode), pick=st.integers(0, 99))
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=DEADLINE_MS,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def call(case: Any, pick: int) -> None:
        model = real_model(gateway, path, pick)
        if model and isinstance(case.body, dict) and "model" in case.body and pick % 4:
            case.body["model"] = model
        headers = {**(case.headers or {}), **auth_headers(case, credentials)}
        response = case.call(base_url=gateway.url, headers=headers, timeout=DEADLINE_MS / 1000)
        where = f"{case.method} {case.formatted_path} -> {response.status_code}: {response.content[:300]!r}"
        STATUSES.setdefault(f"{method} {path}", []).append(response.status_code)
        assert response.status_code < 500, where
        if 400 <= response.status_code < 500 and response.content:
            body = response.json()
            # /v1/messages answers in Anthropic's envelope
            assert is_envelope(body) or body.get("type") == "error", where
        if path == "/credits/rotate" and response.status_code == 200:
            credentials.credit_id = response.json()["credit_id"]

    try:
        call()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        # nothing in this operation can be made invalid (no parameters, no body)


STATUSES: dict[str, list[int]] = {}


REACHED_2XX = (
    "POST /v1/chat/completions",
    "POST /v1/messages",
    "POST /v1/embeddings",
    "POST /v1/audio/speech",
    "POST /keys",
    "GET /queries/history",
    "GET /admin/losses",
)
"""Operations the fuzzer must get past validation and auth on at least once: the funded key,
the credit_id, the admin token and the real model ids do reach the code behind them."""


def test_ledger_is_balanced_after_fuzzing(gateway: Gateway) -> None:
    report = gateway.check()
    assert report.ok, report
    if STATUSES:  # the fuzzing above ran in this session
        shallow = [op for op in REACHED_2XX if not any(c < 300 for c in STATUSES.get(op, ()))]
        assert not shallow, {op: sorted(set(STATUSES.get(op, ()))) for op in shallow}
