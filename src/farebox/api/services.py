"""Everything the routes need, built once by app.py and passed in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the types only: each module imports the services it uses itself
    from farebox.billing.losses import LossBook
    from farebox.cashu.service import CashuPayments
    from farebox.catalog.model import Catalog
    from farebox.chat.service import ChatService
    from farebox.dashboard.state import DashboardState
    from farebox.data.service import DataService
    from farebox.db.database import Database
    from farebox.history.store import History
    from farebox.keys.store import KeyStore
    from farebox.ledger.service import Ledger
    from farebox.limits.shared import SharedLimits
    from farebox.modalities.services import MediaServices
    from farebox.net.client_ip import ClientAddress
    from farebox.net.drain import Drain
    from farebox.net.ratelimit import PerClientLimit
    from farebox.nwc.auto import AutoTopup
    from farebox.pay402.service import PayPerRequest
    from farebox.payments.service import TopupService
    from farebox.private.relay import PrivateRelay
    from farebox.providers.router import Router
    from farebox.search.web import WebSearch
    from farebox.settings import Settings


@dataclass
class Services:
    settings: Settings
    db: Database
    ledger: Ledger
    keys: KeyStore
    catalog: Catalog
    router: Router
    chat: ChatService
    history: History
    topups: TopupService
    nwc: AutoTopup
    media: MediaServices
    web: WebSearch
    losses: LossBook
    pay402: PayPerRequest
    clients: ClientAddress
    """Who the client is (the socket peer, or X-Forwarded-For from a trusted proxy)."""
    signup_limit: PerClientLimit
    """Per client address, on endpoints anyone may call that create something."""
    data: DataService
    private: PrivateRelay
    cashu: CashuPayments
    """Cashu ecash per request (X-Cashu), with change."""
    dashboard: DashboardState
    drain: Drain
    """SIGTERM's drain (net/drain.py): /readyz says 503 while it runs; streams are cut at its end."""
    limits: SharedLimits
    """Keys' rate limits and model scopes; with FAREBOX_REDIS_URL, shared by every replica."""
