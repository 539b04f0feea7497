"""Models: the catalog with its prices (as `GET /v1/models` shows them), searchable, filterable
by type and sortable by price. Filtering and sorting happen here, on the server; the page only
asks again as the customer types."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.catalog.listing import average_prompt_nanos
from farebox.catalog.model import MODEL_TYPES, UNIT_PRICED_TYPES, CatalogModel
from farebox.dashboard.sessions import CUSTOMER
from farebox.dashboard.web import Web

SORTS = (
    ("price", "price, lowest first"),
    ("-price", "price, highest first"),
    ("name", "name"),
    ("newest", "newest first"),
)
MAX_QUERY = 100


@dataclass(frozen=True, slots=True)
class ModelRow:
    id: str
    name: str
    provider: str
    type: str
    input: int
    output: int
    typical: int  # nanodollars: an average prompt, or the cheapest unit
    context: int
    date_added: str
    is_free: bool
    private: bool
    unit_pricing: tuple[tuple[str, int], ...]


def model_row(model: CatalogModel) -> ModelRow:
    unit_priced = model.type in UNIT_PRICED_TYPES and bool(model.unit_prices)
    typical = min(model.unit_prices.values()) if unit_priced else average_prompt_nanos(model.price)
    return ModelRow(
        id=model.id,
        name=model.name,
        provider=model.provider,
        type=model.type,
        input=model.price.input,
        output=model.price.output,
        typical=typical,
        context=model.context,
        date_added=model.date_added,
        is_free=model.is_free,
        private=model.private,
        unit_pricing=tuple(sorted(model.unit_prices.items())) if unit_priced else (),
    )


def find_models(
    models: list[CatalogModel], query: str, model_type: str, sort: str
) -> list[ModelRow]:
    """The models matching `query` (in id, name or provider) of `model_type`, sorted."""
    needle = query.strip().lower()[:MAX_QUERY]
    rows = [
        model_row(m)
        for m in models
        if (not model_type or m.type == model_type)
        and (not needle or needle in f"{m.id} {m.name} {m.provider}".lower())
    ]
    if sort == "-price":
        rows.sort(key=lambda r: (-r.typical, r.id))
    elif sort == "name":
        rows.sort(key=lambda r: r.name.lower())
    elif sort == "newest":
        rows.sort(key=lambda r: (r.date_added, r.id), reverse=True)
    else:
        rows.sort(key=lambda r: (r.typical, r.id))
    return rows


def routes(web: Web) -> list[Route]:
    catalog = web.services.catalog

    def read(request: Request) -> dict[str, object]:
        params = request.query_params
        model_type = params.get("type", "")
        sort = params.get("sort", "price")
        query = params.get("q", "")[:MAX_QUERY]
        model_type = model_type if model_type in MODEL_TYPES else ""
        sort = sort if sort in dict(SORTS) else "price"
        return {
            "q": query,
            "type": model_type,
            "sort": sort,
            "types": MODEL_TYPES,
            "sorts": SORTS,
            "models": find_models(catalog.list(), query, model_type, sort),
        }

    @web.page(CUSTOMER)
    async def models(request: Request) -> Response:
        session = await web.session(request, CUSTOMER)
        context = {**web.frame(session, "/dashboard/models", "Models"), **read(request)}
        return web.render("models.html", context)

    @web.page(CUSTOMER)
    async def table(request: Request) -> Response:
        return web.render("_models_table.html", read(request))

    return [
        Route("/dashboard/models", models, methods=["GET"]),
        Route("/dashboard/models/table", table, methods=["GET"]),
    ]
