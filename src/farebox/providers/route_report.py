"""Every chat route's health as the operator sees it (`GET /admin/routes`, the console): its
breaker's state, or a closed breaker for a route not used since the process started."""

from __future__ import annotations

from typing import Any

from farebox.catalog.model import Catalog
from farebox.providers.breaker import CLOSED
from farebox.providers.router import Router


def route_rows(catalog: Catalog, router: Router) -> list[dict[str, Any]]:
    health = router.health
    now = health.clock()
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for model in catalog.list("chat"):
        for route in model.routes:
            key = (route.provider, route.upstream_model)
            if key not in rows:
                breaker = health.breakers.get(key)
                rows[key] = (
                    breaker.snapshot(now)
                    if breaker is not None
                    else {
                        "provider": route.provider,
                        "upstream_model": route.upstream_model,
                        "state": CLOSED,
                        "consecutive_failures": 0,
                        "failures": 0,
                        "successes": 0,
                        "retry_in_s": None,
                        "last_error": None,
                    }
                )
                rows[key]["configured"] = route.provider in router.providers
                rows[key]["models"] = []
            rows[key]["models"].append(model.id)
    return list(rows.values())
