"""Build the gateway: storage, ledger, keys, catalog, providers, routes. No globals."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from farebox.api import (
    accounts,
    admin,
    admin_losses,
    admin_routes,
    chat,
    history,
    keys,
    messages,
    models,
)
from farebox.api import audio as audio_api
from farebox.api import cashu as cashu_api
from farebox.api import data as data_api
from farebox.api import dev as dev_api
from farebox.api import embeddings as embeddings_api
from farebox.api import images as images_api
from farebox.api import media as media_api
from farebox.api import nwc as nwc_api
from farebox.api import private as private_api
from farebox.api import topup as topup_api
from farebox.api import videos as videos_api
from farebox.api.openapi import routes as openapi_api
from farebox.api.responses import JSONResponse, error_response
from farebox.api.services import Services
from farebox.billing.leases import LeaseKeeper
from farebox.billing.losses import LossBook
from farebox.billing.tokens import encoder
from farebox.cashu.service import build_cashu
from farebox.catalog.loader import load_catalog
from farebox.catalog.model import Catalog
from farebox.chat.service import ChatService
from farebox.dashboard import routes as dashboard
from farebox.dashboard.sessions import SessionStore
from farebox.dashboard.state import DashboardState, form_key_from
from farebox.data.model import DataCatalog
from farebox.data.service import build_data_service
from farebox.db.database import Database
from farebox.db.migrate import upgrade_to_head
from farebox.errors import FareboxError, InvalidRequest, NotFound
from farebox.history.store import History
from farebox.keys.instance_secret import SecretSetupError, instance_secret
from farebox.keys.secrets import KeyCipher
from farebox.keys.store import KeyStore
from farebox.ledger.service import Ledger, Sweeper
from farebox.limits.shared import build_limits
from farebox.modalities.services import build_media_services
from farebox.net.client_ip import ClientAddress
from farebox.net.drain import DRAIN_STATE_KEY, Drain
from farebox.net.ratelimit import MemoryRateStore, PerClientLimit, RateLimiter, RateRule
from farebox.net.socks import VettingSocksProxy
from farebox.net.ssrf import FetchPolicy
from farebox.net.stream_cut import quiet_stream_cuts
from farebox.nwc.auto import AutoTopup, AutoTopupConfig
from farebox.nwc.wallet import NostrWallet
from farebox.observe.context import current
from farebox.observe.install import Observability
from farebox.pay402.build import build_pay_per_request
from farebox.pay402.config import Pay402Config
from farebox.payments.config import PaymentsConfig, build_topups
from farebox.payments.poller import Reconciler
from farebox.private.enclaves import Enclaves
from farebox.private.relay import PrivateRelay
from farebox.providers.breaker import RoutingPolicy
from farebox.providers.router import Router
from farebox.redaction import redact_access_logs
from farebox.search.web import WebSearch
from farebox.settings import Settings

log = logging.getLogger("farebox")


def prepare_database(settings: Settings) -> Database:
    """Open the database and bring its schema to head (safe with several processes)."""
    db = Database(
        settings.database_url,
        threads=settings.db_threads,
        async_commit=settings.ledger_async_commit,
    )
    upgrade_to_head(db.engine)
    db.scrub_if_requested()
    return db


def build_services(
    settings: Settings, catalog: Catalog | None = None, data_catalog: DataCatalog | None = None
) -> Services:
    db = prepare_database(settings)
    try:
        secret = instance_secret(settings, db)
    except SecretSetupError:
        db.close()
        raise
    ledger = Ledger(db)
    limits = build_limits(settings.redis_url, settings.redis_prefix)
    key_store = KeyStore(
        db,
        KeyCipher(secret),
        cache_ttl_s=settings.key_cache_ttl_s,
        announce=limits.broadcast.announce if limits.broadcast is not None else None,
    )
    if catalog is None:
        catalog = load_catalog(settings.catalog_path, env=settings.extra_env)
    router = Router.from_catalog(catalog, RoutingPolicy.from_env(settings.extra_env))
    for tokenizer in sorted({m.tokenizer for m in catalog.models.values()}):
        encoder(tokenizer)  # load the tables now, not on the first customer's request
    losses = LossBook(db)
    drain = Drain()
    chat_service = ChatService(
        catalog,
        router,
        ledger,
        key_store,
        hold_timeout_s=settings.hold_timeout_s,
        stream_increment_tokens=settings.stream_increment_tokens,
        leases=LeaseKeeper(ledger, settings.hold_timeout_s),
        default_max_tokens=settings.default_max_tokens,
        losses=losses,
        drain=drain,
        gate=limits.gate,
    )
    web = WebSearch.from_catalog(catalog, settings.extra_env)
    chat_service.addons = web.addon_for  # the web plugin
    topups = build_topups(PaymentsConfig.from_env(settings.extra_env), db, secret)
    fetch_policy = FetchPolicy.from_env(settings.extra_env)
    auto_topup = AutoTopup(
        db,
        ledger,
        topups,
        KeyCipher(secret),
        NostrWallet(VettingSocksProxy(fetch_policy)),
        AutoTopupConfig.from_env(settings.extra_env),
        relay_policy=fetch_policy,
    )
    ledger.add_settle_listener(auto_topup.on_settled)
    clients = ClientAddress(settings.trusted_proxies)
    private = PrivateRelay(
        catalog,
        Enclaves.from_catalog(catalog),
        ledger,
        key_store,
        hold_timeout_s=settings.hold_timeout_s,
        leases=chat_service.leases,
        losses=losses,
        gate=limits.gate,
    )
    cashu = build_cashu(settings.extra_env, db, ledger, topups.rates, KeyCipher(secret))
    pay402_config = Pay402Config.from_env(settings.extra_env)
    return Services(
        settings=settings,
        db=db,
        ledger=ledger,
        keys=key_store,
        catalog=catalog,
        router=router,
        chat=chat_service,
        history=History(db),
        topups=topups,
        nwc=auto_topup,
        media=build_media_services(
            settings, catalog, router, ledger, key_store, secret, db, limits.gate
        ),
        web=web,
        losses=losses,
        pay402=build_pay_per_request(pay402_config, db, topups, secret, cashu),
        clients=clients,
        signup_limit=PerClientLimit(
            RateLimiter(
                "account creation",
                RateRule(settings.signup_per_minute, settings.signup_burst),
                MemoryRateStore(),
            ),
            clients,
        ),
        data=build_data_service(settings, ledger, key_store, data_catalog, limits.gate),
        private=private,
        cashu=cashu,
        dashboard=DashboardState(
            sessions=SessionStore(db, settings.session_idle_s, settings.session_max_s),
            signin_limit=PerClientLimit(
                RateLimiter(
                    "sign-in",
                    RateRule(settings.signin_per_minute, settings.signin_burst),
                    MemoryRateStore(),
                ),
                clients,
            ),
            form_key=form_key_from(secret),
        ),
        drain=drain,
        limits=limits,
    )


def _health_routes(services: Services) -> list[Route]:
    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        if services.drain.draining:  # SIGTERM: the load balancer is to take this replica out
            return JSONResponse({"status": "draining"}, 503)
        try:
            await services.ledger.balance("revenue")
        except Exception:  # the database is what readiness depends on; details are the operator's
            log.warning("readiness: the database did not answer", exc_info=True)
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, 503)
        routes = services.router.health.summary()  # informational: a resting route is not fatal
        return JSONResponse({"status": "ready", "database": services.db.dialect, "routes": routes})

    return [Route("/healthz", healthz), Route("/readyz", readyz)]


async def _farebox_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FareboxError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(NotFound(f"No such endpoint: {request.method} {request.url.path}"))
    if exc.status_code == 405:
        not_allowed = InvalidRequest(f"{request.method} is not allowed on {request.url.path}")
        not_allowed.status = 405
        return error_response(not_allowed)
    other = FareboxError(str(exc.detail))
    other.status = exc.status_code
    return error_response(other)


async def _client_gone(request: Request, exc: Exception) -> Response:
    """The client left, or was cut off for sending its body too slowly (net/connections.py):
    nobody will read an answer, and it is not an error of ours to log."""
    return Response(status_code=400)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    err = FareboxError("Internal error. Nothing was charged for this request.")
    err.status = 500
    err.type = "server_error"
    return error_response(err)


def create_app(
    settings: Settings, catalog: Catalog | None = None, data_catalog: DataCatalog | None = None
) -> Starlette:
    redact_access_logs()  # no credit_id, key or signature from a URL reaches a log
    quiet_stream_cuts()  # a stream broken off on purpose is one warning, not a traceback
    services = build_services(settings, catalog, data_catalog)
    observability = Observability(services)  # /metrics, access lines, request ids
    sweeper = Sweeper(services.ledger, settings.sweep_interval_s)
    reconciler = Reconciler(services.topups, services.topups.poll_interval_s)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        sweeper.start()
        if services.chat.leases is not None:
            services.chat.leases.start()
        reconciler.start()
        services.nwc.start()
        services.limits.start(services.keys)
        observability.start()
        await services.media.start()
        # What start-up built (catalog, tokenizer tables, compiled SQL: ~140k objects) lives as
        # long as the process: keep the cyclic collector from rescanning it in every full
        # collection, which otherwise pauses the event loop for ~80 ms each time.
        gc.collect()
        gc.freeze()
        gc.set_threshold(YOUNG_OBJECTS_BEFORE_COLLECTION, *gc.get_threshold()[1:])
        try:
            yield {DRAIN_STATE_KEY: services.drain}  # for the server (net/drain_server.py)
        finally:
            await services.media.stop()
            await observability.stop()
            await services.nwc.stop()
            await reconciler.stop()
            await services.topups.close()
            if services.chat.leases is not None:
                await services.chat.leases.stop()
            await sweeper.stop()
            await services.ledger.flush()
            await services.router.close()
            await services.web.close()
            await services.data.close()
            await services.private.close()
            await services.cashu.close()
            await services.limits.close()
            services.db.close()
            observability.close()

    chat_routes = chat.routes(services)
    route_list = [
        *chat_routes,
        *messages.routes(services),
        *models.routes(services),
        *accounts.routes(services),
        *keys.routes(services),
        *history.routes(services),
        *admin.routes(services),
        *admin_routes.routes(services),
        *admin_losses.routes(services),
        *topup_api.routes(services),
        *dev_api.routes(services),
        *nwc_api.routes(services),
        *embeddings_api.routes(services),
        *images_api.routes(services),
        *media_api.routes(services),
        *audio_api.routes(services),
        *videos_api.routes(services),
        *data_api.routes(services),
        *private_api.routes(services),
        *cashu_api.routes(services),
        *_health_routes(services),
        *openapi_api.routes(services),
        *dashboard.routes(services),
        *observability.routes(),
    ]
    app = Gateway(
        hot={route.path: route.app for route in chat_routes},  # the same endpoint, unrouted
        routes=route_list,
        lifespan=lifespan,
        exception_handlers={
            FareboxError: _farebox_error,
            HTTPException: _http_error,
            ClientDisconnect: _client_gone,
            Exception: _unexpected,
        },
    )
    app.state.services = services
    app.wrap(lambda inner: observability.middleware(inner, app.hot_paths))
    return app


class Gateway(Starlette):
    """The app, with the paid chat routes sent straight to their endpoint.

    Starlette's router and middleware stack cost a few percent of a paid request's CPU; the hot
    routes skip them, and their errors go to the same handlers as everywhere else.
    """

    def __init__(self, hot: Mapping[str, ASGIApp], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._hot = dict(hot)
        self._entry: ASGIApp = self._dispatch

    @property
    def hot_paths(self) -> list[str]:
        return list(self._hot)

    def wrap(self, layer: Callable[[ASGIApp], ASGIApp]) -> None:
        """Put `layer` around everything, the hot routes included (observe/middleware.py)."""
        self._entry = layer(self._entry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._entry(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self._hot.get(scope["path"]) if scope["type"] == "http" else None
        if endpoint is None or scope["method"] != "POST":
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        obs = current()  # the request layer's (observe/middleware.py): it notes the response start
        started = False
        out = send
        if obs is None:  # no request layer (benchmarks): note it here

            async def sending(message: Message) -> None:
                nonlocal started
                started = True
                await send(message)

            out = sending
        try:
            await endpoint(scope, receive, out)
        except Exception as exc:
            if started or (obs is not None and obs.first is not None):
                raise
            handler = _farebox_error if isinstance(exc, FareboxError) else _unexpected
            if isinstance(exc, ClientDisconnect):
                handler = _client_gone
            response = await handler(Request(scope, receive), exc)
            await response(scope, receive, send)


YOUNG_OBJECTS_BEFORE_COLLECTION = 10_000
"""The cyclic collector's first threshold (Python's default: 700). A request's objects are freed
by reference counting as it ends, but the requests in flight alone hold more than 700: at 4,000
req/s the default ran ~180 young collections a second of ~100 µs each (2 % of the CPU), finding
almost nothing (measured with gc.callbacks under bench/'s load). Garbage in cycles (an
exception's traceback) is still collected, a little later."""


def app_from_env() -> Starlette:
    """An app from the environment, for running farebox under another ASGI server
    (`uvicorn farebox.app:app_from_env --factory`). `farebox serve --workers N` does not use
    it: it loads once and forks (net/prefork.py)."""
    settings = Settings.from_env()
    # genai-prices is read in a child: the serving process never carries it (cost_refs.py)
    catalog = load_catalog(settings.catalog_path, env=settings.extra_env, costs_in_child=True)
    return create_app(settings, catalog=catalog)
