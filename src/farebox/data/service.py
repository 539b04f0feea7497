"""One paid data call: validate, quote the fixed price, pay, call the provider, settle.

The price is held before the upstream is called and charged only when the provider answers 2xx
with a JSON body (an empty result included: the provider charged for it). Anything else, a 4xx
for the caller's parameters included, releases the hold: nothing is charged. One history row per
charged call, `query_type` "data" and `model` the endpoint id.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from farebox.errors import FareboxError
from farebox.keys.store import ApiKey, KeyStore
from farebox.ledger.service import Ledger
from farebox.ledger.types import QueryRecord
from farebox.limits.gate import KeyGate
from farebox.modalities.paid import Buyer, PaidResult, Payer
from farebox.settings import Settings

from .loader import load_data_catalog
from .model import DataCatalog
from .params import DataCall, read_call
from .upstream import DataClient

log = logging.getLogger(__name__)

QUERY_TYPE = "data"


class EndpointNotConfigured(FareboxError):
    """The operator has not set the provider's credentials: nothing can be served (free)."""

    status = 501
    type = "server_error"
    code = "endpoint_not_configured"


class DataService:
    def __init__(self, catalog: DataCatalog, payer: Payer, client: DataClient) -> None:
        self.catalog = catalog
        self.payer = payer
        self.client = client

    def quote(
        self, method: str, path: str, query: Sequence[tuple[str, str]], raw_body: bytes
    ) -> DataCall:
        """The checked call and its fixed price (`call.price`, nanodollars). No network, no
        money: a bad request, or an endpoint its operator has not configured, fails here (400,
        404, 405, 501) before anyone pays or is sent a payment challenge."""
        call = read_call(self.catalog, method, path, query, raw_body)
        upstream = self.catalog.upstream(call.endpoint)
        if not upstream.auth.configured:
            log.error("data %s: not configured; set %s", call.endpoint.id, upstream.auth.missing)
            raise EndpointNotConfigured(
                f"{call.endpoint.public_path} is not configured on this server: its operator has "
                "not set the provider's credentials. Nothing was charged."
            )
        return call

    async def call_with_key(self, key: ApiKey, call: DataCall) -> PaidResult:
        """Pay for `call` from the key's account (and key budget), then run it."""
        return await self.execute(call, self.payer.for_key(key))

    async def execute(self, call: DataCall, buyer: Buyer) -> PaidResult:
        """Hold the price on the buyer (a key's account, or a paid 402 credential's), call the
        provider, charge it on success, else void the hold."""
        endpoint = call.endpoint
        charge = await buyer.open(call.price, endpoint.id)
        try:
            body = await self.client.send(call, self.catalog.upstream(endpoint))
        except BaseException:
            charge.void()
            raise
        charge.settle(
            call.price,
            QueryRecord(
                model=endpoint.id,
                input_count=1,
                output_count=0,
                query_type=QUERY_TYPE,
                query_source=buyer.source,
                is_free_model=call.price == 0,
            ),
        )
        return PaidResult(cost_nanos=call.price, request_id=charge.request_id, body=body)

    async def close(self) -> None:
        await self.client.close()


def build_data_service(
    settings: Settings,
    ledger: Ledger,
    keys: KeyStore,
    catalog: DataCatalog | None = None,
    gate: KeyGate | None = None,
) -> DataService:
    """The service over `catalog`, else the shipped catalog merged with FAREBOX_DATA_CATALOG
    (upstream keys from the environment)."""
    if catalog is None:
        catalog = load_data_catalog(env=settings.extra_env)
    return DataService(catalog, Payer(ledger, keys, settings.hold_timeout_s, gate), DataClient())
