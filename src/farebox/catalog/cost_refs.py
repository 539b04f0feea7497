"""The catalog's `cost_ref`s looked up in genai-prices, all at once, here or in a child process.

genai-prices keeps its whole dataset in memory once imported (about 10 MB resident with its
pydantic models and its HTTP client), and the catalog reads it only while it loads. A serving
process (`farebox serve`, whose forked workers inherit the catalog; `app.app_from_env`) looks
its references up in a short-lived child process (about half a second at start-up) and never
imports it; tests, the CLI's other commands and the demo look them up in-process. The answers are the same either way: `lookup_cost` for each reference, on the same date.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .errors import CatalogError
from .model import TokenPrices

CostRef = tuple[str, str, bool]
"""(genai-prices provider, model, whether an output price is required)."""


class CostNotFound(LookupError):
    """genai-prices has no usable token price for this reference."""


@dataclass(frozen=True, slots=True)
class UpstreamCost:
    """A model's upstream token prices, and where a higher tier starts (None if flat)."""

    prices: TokenPrices
    tier_threshold: int | None = None


Costs = Mapping[CostRef, UpstreamCost | CostNotFound]

# The child imports this module by its name (run as __main__, its CostNotFound would be another
# class than the one upstream_costs raises).
_CHILD = "from farebox.catalog.cost_refs import child_main; child_main()"


def refs_in(models: Iterable[Mapping[str, Any]]) -> set[CostRef]:
    """The well-formed references of catalog model entries that have no hand-typed `cost` (the
    loader reports a malformed one, and looks up anything missed here on its own)."""
    refs = set()
    for obj in models:
        ref = obj.get("cost_ref")
        if "cost" in obj or not isinstance(ref, Mapping):
            continue
        provider, model = ref.get("provider"), ref.get("model")
        if isinstance(provider, str) and isinstance(model, str):
            refs.add((provider, model, obj.get("type") != "embedding"))
    return refs


def look_up_here(
    refs: Iterable[CostRef], at: datetime
) -> dict[CostRef, UpstreamCost | CostNotFound]:
    """Each reference's cost (or why there is none), with genai-prices loaded in this process."""
    found: dict[CostRef, UpstreamCost | CostNotFound] = {}
    refs = list(refs)
    if not refs:
        return found
    from .upstream_costs import lookup_cost  # imports genai-prices: only when there is a ref

    for provider, model, requires_output in refs:
        try:
            found[(provider, model, requires_output)] = lookup_cost(
                provider, model, at=at, requires_output=requires_output
            )
        except CostNotFound as exc:
            found[(provider, model, requires_output)] = exc
    return found


def look_up_in_child(
    refs: Iterable[CostRef], at: datetime
) -> dict[CostRef, UpstreamCost | CostNotFound]:
    """`look_up_here` in a short-lived child process, so that this one never loads genai-prices."""
    refs = sorted(refs)
    if not refs:
        return {}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD],
        input=json.dumps({"at": at.isoformat(), "refs": refs}),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise CatalogError(f"looking up genai-prices costs failed:\n{done.stdout}{done.stderr}")
    return {
        (provider, model, requires_output): _decoded(answer)
        for (provider, model, requires_output), answer in zip(
            refs, json.loads(done.stdout), strict=True
        )
    }


def child_main() -> None:
    """The child's side: refs and date as JSON on stdin, one answer per ref on stdout."""
    asked = json.load(sys.stdin)
    at = datetime.fromisoformat(asked["at"])
    refs = [(provider, model, bool(output)) for provider, model, output in asked["refs"]]
    found = look_up_here(refs, at)
    json.dump([_encoded(found[ref]) for ref in refs], sys.stdout)


def _encoded(answer: UpstreamCost | CostNotFound) -> dict[str, Any]:
    if isinstance(answer, CostNotFound):
        return {"not_found": str(answer)}
    p = answer.prices
    return {
        "prices": [p.input, p.output, p.cache_read, p.cache_write],
        "tier_threshold": answer.tier_threshold,
    }


def _decoded(answer: Mapping[str, Any]) -> UpstreamCost | CostNotFound:
    if "not_found" in answer:
        return CostNotFound(answer["not_found"])
    input_, output, cache_read, cache_write = answer["prices"]
    return UpstreamCost(
        TokenPrices(input_, output, cache_read=cache_read, cache_write=cache_write),
        tier_threshold=answer["tier_threshold"],
    )
