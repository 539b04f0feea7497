"""GET /metrics: gated by the admin token unless opened, parsed by prometheus_client's own text
parser, labels bounded whatever the URL or model name, and the database's figures apart."""

from __future__ import annotations

from collections.abc import Iterable

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from farebox.observe.labels import ModelLabels, failure_reason

from observe_support import GatewayFactory
from support import ADMIN_TOKEN, new_account

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def chat(model: str, **extra: object) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hello"}], **extra}


def scrape(c: httpx.Client) -> list[Sample]:
    r = c.get("/metrics", headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return [s for family in text_string_to_metric_families(r.text) for s in family.samples]


def value(samples: Iterable[Sample], name: str, **labels: str) -> float:
    return sum(
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_metrics_need_the_admin_token_unless_opened(make_gateway: GatewayFactory) -> None:
    with make_gateway() as gw, gw.client() as c:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/metrics", headers=ADMIN).status_code == 200
    with make_gateway(admin_token=None) as gw, gw.client() as c:
        r = c.get("/metrics", headers=ADMIN)
        assert r.status_code == 403 and "FAREBOX_METRICS_PUBLIC" in r.text
    with make_gateway(env={"FAREBOX_METRICS_PUBLIC": "true"}) as gw, gw.client() as c:
        assert c.get("/metrics").status_code == 200


def test_requests_latency_revenue_and_the_database_figures(make_gateway: GatewayFactory) -> None:
    with make_gateway() as gw, gw.client() as c:
        _, key = new_account(c, usd=1)
        auth = {"Authorization": f"Bearer {key}"}
        costs = 0.0
        for _ in range(3):
            r = c.post("/v1/chat/completions", json=chat("test-model"), headers=auth)
            assert r.status_code == 200
            costs += float(r.headers["x-farebox-cost"])
        s = c.post("/v1/chat/completions", json=chat("test-model", stream=True), headers=auth)
        assert s.status_code == 200
        assert c.post("/v1/chat/completions", json=chat("test-model")).status_code == 401
        gw.loop.run(gw.services.ledger.flush())
        samples = scrape(c)
    route = "/v1/chat/completions"
    ok = value(samples, "farebox_requests_total", route=route, status="200", model="test-model")
    assert ok == 4
    assert value(samples, "farebox_requests_total", route=route, status="401", model="none") == 1
    assert value(samples, "farebox_requests_total", route="/admin/credits", status="200") == 1
    assert value(samples, "farebox_time_to_first_byte_seconds_count", route=route) == 5
    assert value(samples, "farebox_request_duration_seconds_count", route=route) == 5
    assert value(samples, "farebox_gateway_overhead_seconds_count", route=route) == 4
    assert value(samples, "farebox_upstream_seconds_count", provider="sim", model="test-model") == 4
    revenue = value(samples, "farebox_revenue_usd_total", model="test-model")
    assert revenue > costs  # the three whole answers, and the stream's charge
    assert value(samples, "farebox_route_breaker_state", provider="sim") == 0
    # The database's figures: named apart, said not to be summed, all holds settled.
    assert value(samples, "farebox_db_up") == 1
    assert value(samples, "farebox_db_open_holds") == 0
    assert value(samples, "farebox_db_reserved_usd") == 0
    names = {s.name for s in samples}
    assert {"farebox_db_open_holds", "farebox_db_expired_holds"} <= names


def test_failures_fallbacks_and_breakers_by_route(make_gateway: GatewayFactory) -> None:
    env = {"FAREBOX_ROUTE_FAILURES_TO_OPEN": "1", "FAREBOX_ROUTE_RETRIES": "0"}
    with make_gateway(env=env) as gw, gw.client() as c:
        _, key = new_account(c, usd=1)
        auth = {"Authorization": f"Bearer {key}"}
        r = c.post("/v1/chat/completions", json=chat("fallback-model"), headers=auth)
        assert r.status_code == 200
        f = c.post("/v1/chat/completions", json=chat("failing-model"), headers=auth)
        assert f.status_code in (502, 503)
        samples = scrape(c)
    failures = "farebox_upstream_failures_total"
    assert value(samples, failures, provider="sim503", model="fallback-model", reason="http_5xx")
    assert value(samples, failures, provider="dead", model="fallback-model", reason="network")
    fallbacks = "farebox_upstream_fallbacks_total"
    assert value(samples, fallbacks, provider="sim503", model="fallback-model") >= 1
    assert value(samples, fallbacks, provider="dead", model="fallback-model") >= 1
    assert (
        value(samples, "farebox_route_breaker_state", provider="sim", upstream_model="sim-chat")
        == 0
    )
    assert value(samples, "farebox_route_breaker_state", provider="sim500") == 2


def test_labels_stay_bounded_whatever_the_client_sends(make_gateway: GatewayFactory) -> None:
    with make_gateway() as gw, gw.client() as c:
        _, key = new_account(c, usd=1)
        auth = {"Authorization": f"Bearer {key}"}
        for i in range(40):
            c.get(f"/keys/sk-{i:040d}", headers=auth)
            c.get(f"/media/obj_{i}?sig={i}&exp=9")
            c.get(f"/wp-admin/{i}/../etc/passwd")
            c.post(f"/v1/chat/completions?x={i}", json=chat(f"evil-model-{i}"), headers=auth)
            c.post("/v1/chat/completions", json=chat("x" * (i + 1) * 50), headers=auth)
        samples = scrape(c)
        templates = {route.path for route in gw.app.routes}
    requests = [s for s in samples if s.name == "farebox_requests_total"]
    routes = {s.labels["route"] for s in requests}
    models = {s.labels["model"] for s in requests}
    assert "unmatched" in routes and "/keys/{key_id}" in routes
    assert routes <= templates | {"unmatched"}, routes
    assert models <= {"none", "other", "test-model"}, models
    assert len(requests) < 20  # not one series per hostile request


def test_label_helpers() -> None:
    labels = ModelLabels(["gpt-x"])
    assert (labels("gpt-x"), labels("gpt-y"), labels(None)) == ("gpt-x", "other", "none")
    assert failure_reason(429, "") == "http_429" and failure_reason(503, "") == "http_5xx"
    assert failure_reason(401, "") == "http_4xx" and failure_reason(None, "timed out") == "timeout"
    assert failure_reason(None, "could not be reached") == "network"


def test_metrics_can_be_turned_off(make_gateway: GatewayFactory) -> None:
    env = {"FAREBOX_METRICS": "off", "FAREBOX_ACCESS_LOG": "off"}
    with make_gateway(env=env) as gw, gw.client() as c:
        assert c.get("/metrics", headers=ADMIN).status_code == 404
        assert "x-request-id" not in c.get("/healthz").headers  # no layer at all
    with make_gateway(env={"FAREBOX_METRICS": "off"}) as gw, gw.client() as c:
        assert c.get("/metrics", headers=ADMIN).status_code == 404
        assert "x-request-id" in c.get("/healthz").headers


def test_a_tally_exposes_what_prometheus_client_s_own_observe_would() -> None:
    """The hot path counts into plain numbers (observe/metrics.py's Tally) and flushes them into
    the histogram's values: the exposition is the same as observing each value directly, bucket
    edges included (`le` is inclusive)."""
    from prometheus_client import CollectorRegistry, Histogram, generate_latest

    from farebox.observe.metrics import Tally

    bounds = (0.005, 0.01, 0.1, 1.0)
    values = [0.0, 0.005, 0.0051, 0.01, 0.05, 0.1, 0.5, 1.0, 1.5, 99.0, 0.002]
    direct_registry, tallied_registry = CollectorRegistry(), CollectorRegistry()
    direct = Histogram("h", "doc", ("route",), registry=direct_registry, buckets=bounds)
    tallied = Histogram("h", "doc", ("route",), registry=tallied_registry, buckets=bounds)
    tally = Tally(tallied.labels("/r"), bounds)

    def exposed(registry: CollectorRegistry) -> list[bytes]:
        text = generate_latest(registry).splitlines()
        return [line for line in text if not line.startswith(b"h_created")]  # a clock reading

    for v in values:
        direct.labels("/r").observe(v)
        tally.observe(v)
    assert exposed(tallied_registry) != exposed(direct_registry)  # not yet
    tally.flush()
    tally.flush()  # a second flush adds nothing
    assert exposed(tallied_registry) == exposed(direct_registry)
    for v in values[:3]:  # and after a flush, counting goes on from there
        direct.labels("/r").observe(v)
        tally.observe(v)
    tally.flush()
    assert exposed(tallied_registry) == exposed(direct_registry)
