"""`farebox serve --demo`: the shipped catalog routed to a local simulator, and a funded account."""

from __future__ import annotations

import dataclasses
import secrets
import uuid
from pathlib import Path

from farebox.api.services import Services
from farebox.catalog.loader import load_catalog
from farebox.catalog.model import Catalog, ProviderConfig, Route
from farebox.data.demo import sim_data_catalog
from farebox.data.model import DataCatalog
from farebox.devpay import DEFAULT_URL
from farebox.keys.store import NewAccount
from farebox.ledger.types import GRANTS, Code, Transfer
from farebox.modalities.demo import media_demo_catalog, with_media
from farebox.private.demo import demo_private_models
from farebox.settings import Settings
from farebox.startup import masked_database_url

DEMO_CREDIT_NANOS = 5_000_000_000  # $5
DEMO_MODEL = "gpt-5-mini"


def build_demo_catalog(
    sim_url: str, enclave_url: str | None = None, catalog_path: Path | None = None
) -> Catalog:
    """Every model of the shipped catalog (merged with the operator's file at `catalog_path`,
    when given), at its own price, answered by the simulator: chat, embeddings, audio, speech,
    images and video; the keyless local models when installed; the private models through the
    simulated enclave at `enclave_url` (left out without one)."""
    shipped = load_catalog(catalog_path, env={})
    sim = ProviderConfig(name="sim", kind="openai", base_url=sim_url + "/v1", api_key="sim")
    models = {
        model_id: dataclasses.replace(model, routes=(Route("sim", model_id),))
        for model_id, model in shipped.models.items()
        if model.type == "chat" and not model.private
    }
    providers = {"sim": sim}
    if enclave_url is not None:
        private, enclave = demo_private_models(shipped, enclave_url)
        models.update(private)
        providers[enclave.name] = enclave
    chat = Catalog(models=models, providers=providers)
    return with_media(chat, media_demo_catalog(sim_url, shipped))


def build_demo_data_catalog(sim_url: str) -> DataCatalog:
    """Every shipped data endpoint, at its real price, answered by the simulator."""
    return sim_data_catalog(sim_url)


async def create_demo_account(services: Services) -> NewAccount:
    new = await services.keys.create_account()
    grant_id = "grant.demo." + uuid.uuid4().hex
    await services.ledger.transfer(
        Transfer(grant_id, GRANTS, new.account_id, DEMO_CREDIT_NANOS, Code.GRANT)
    )
    return new


def enable_dev_wallet(settings: Settings) -> Settings:
    """The demo tops up end to end with the dev wallet (`farebox dev pay <bolt11>`)."""
    return settings.with_overrides(extra_env={**settings.extra_env, "FAREBOX_DEV_WALLET": "1"})


def enable_dashboard(settings: Settings) -> Settings:
    """The demo's dashboard works over plain http (cookies without Secure: FAREBOX_PUBLIC_URL is
    the http:// address served) and its console opens with an admin token made for this run
    unless FAREBOX_ADMIN_TOKEN is set."""
    return settings.with_overrides(
        public_url=settings.public_url or f"http://{settings.host}:{settings.port}",
        admin_token=settings.admin_token or "demo-" + secrets.token_urlsafe(16),
    )


def demo_banner(
    settings: Settings,
    sim_url: str,
    credit_id: str,
    api_key: str,
    account_id: str,
    command: str = "farebox",
    token_generated: bool = True,
) -> str:
    """What the demo prints: where it runs, the account, and commands that run as printed
    (`command` is how this farebox is run from a shell, see startup.farebox_command)."""
    base = f"http://{settings.host}:{settings.port}"
    token = settings.admin_token or ""
    if token_generated:
        admin = f"  admin token: {token}  (Bearer token for /admin/*; made for this demo)"
        env, token_ref = f"FAREBOX_ADMIN_TOKEN={token} ", token
    else:
        admin = "  admin token: yours, from FAREBOX_ADMIN_TOKEN"
        env, token_ref = "", "$FAREBOX_ADMIN_TOKEN"
    url = "" if base == DEFAULT_URL else f" --url {base}"
    catalog = f"shipped + {settings.catalog_path}" if settings.catalog_path else "shipped"
    return "\n".join(
        [
            "farebox demo",
            f"  gateway:    {base}  (database {masked_database_url(settings.database_url)})",
            f"  simulator:  {sim_url}  (answers every model of the {catalog} catalog)",
            f"  account:    {account_id}  ($5.00 granted)",
            f"  credit_id:  {credit_id}  (the account's password: manages keys)",
            f"  api_key:    {api_key}",
            admin,
            "",
            "Try:",
            f"  open {base}/  (the dashboard: sign in with the credit_id above)",
            *(
                [f"  open {base}/console  (the operator console: admin token {token_ref})"]
                if settings.admin_token
                else []
            ),
            f"  curl -s {base}/v1/chat/completions -H 'Authorization: Bearer {api_key}' "
            "-H 'Content-Type: application/json' "
            f'-d \'{{"model":"{DEMO_MODEL}","messages":[{{"role":"user","content":"Hello there"}}]}}\'',
            f"  curl -s {base}/v1/data/api/exa/search -H 'Authorization: Bearer {api_key}' "
            "-H 'Content-Type: application/json' -d '{\"query\": \"pay per query APIs\"}'",
            f"  curl -s {base}/credits/balance -H 'Content-Type: application/json' "
            f'-d \'{{"credit_id":"{credit_id}"}}\'',
            f"  curl -s -X POST {base}/admin/credits -H 'Authorization: Bearer {token_ref}' "
            "-H 'Content-Type: application/json' "
            f'-d \'{{"account_id":"{account_id}","amount_usd":5}}\'',
            "",
            "Top up with the dev wallet (no real money):",
            f"  curl -s -X POST {base}/topup/create/btc-lightning -H 'Authorization: Bearer {api_key}' "
            '-H \'Content-Type: application/json\' -d \'{"amount": 5, "currency": "USD"}\'',
            f"  {env}{command} dev pay{url} <bolt11 from that reply>",
            "",
        ]
    )
