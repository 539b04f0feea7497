"""What `farebox serve` says and checks before it serves: the command that runs this farebox
as typed in a shell, the listening socket (taken before anything else happens), and one short
block saying what the gateway will do. Never a secret: a database password is masked, keys and
tokens are only said to be set."""

from __future__ import annotations

import errno
import shlex
import shutil
import socket
import sys
from collections import Counter
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from farebox import __version__
from farebox.catalog.model import Catalog
from farebox.observe.config import ObserveConfig
from farebox.payments.config import PaymentsConfig
from farebox.settings import Settings


def farebox_command() -> str:
    """This farebox as a shell command that runs as printed: `farebox` when the one on PATH is
    this one, else its absolute path (`/work/x/.venv/bin/farebox`), else `python -m farebox`."""
    argv0 = Path(sys.argv[0])
    if argv0.name == "farebox" and argv0.is_file():
        here = argv0.absolute()
        on_path = shutil.which("farebox")
        if on_path is not None and Path(on_path).absolute() == here:
            return "farebox"
        return shlex.quote(str(here))
    return f"{shlex.quote(sys.executable)} -m farebox"


class PortBusy(Exception):
    """The address to listen on is taken (another farebox, or another program)."""


def listen_socket(host: str, port: int) -> socket.socket:
    """The listening socket, bound now: a busy port is found before anything is created."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortBusy(
                f"{host}:{port} is already in use (another farebox?). Stop it, or pick another "
                "port with --port."
            ) from exc
        raise PortBusy(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def check_port_free(host: str, port: int) -> None:
    """Raises PortBusy when `host:port` cannot be listened on (the socket is let go again)."""
    listen_socket(host, port).close()


def masked_database_url(url: str) -> str:
    """The database URL without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(an unreadable FAREBOX_DATABASE_URL)"


def _payments_line(config: PaymentsConfig) -> str:
    backends = []
    if config.lnbits_url:
        backends.append("LNbits (Lightning)")
    if config.btcpay_url:
        backends.append("BTCPay Server (methods per FAREBOX_BTCPAY_METHODS)")
    if config.dev_wallet:
        backends.append("the dev wallet (no real money)")
    if not backends:
        return "none: top-ups and pay-per-request are off (see the README's Top-ups)"
    return ", ".join(backends)


def _catalog_line(settings: Settings, catalog: Catalog) -> str:
    source = f"shipped + {settings.catalog_path}" if settings.catalog_path else "shipped"
    kinds = Counter(m.type for m in catalog.models.values())
    parts = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
    refused = f"; {len(catalog.unpriced)} unpriced, refused" if catalog.unpriced else ""
    return f"{source}: {len(catalog.models)} models ({parts}){refused}"


def _upstreams_line(catalog: Catalog) -> str:
    keyed = sorted(p.name for p in catalog.providers.values() if p.api_key)
    keyless = sorted(
        p.name for p in catalog.providers.values() if p.api_key is None and p.api_key_env
    )
    told = f"keys set for {', '.join(keyed)}" if keyed else "no provider key set"
    if keyless:
        told += f"; without a key: {', '.join(keyless)} (their routes fail over)"
    return told


def _notes(settings: Settings) -> list[str]:
    notes = []
    if settings.redis_url:
        notes.append(
            "FAREBOX_REDIS_URL is set: per-key rate limits are shared by every replica, and a "
            "revoked or changed key stops at once on all of them"
        )
    if settings.log_content:
        notes.append("FAREBOX_LOG_CONTENT has no effect: farebox never logs prompts or replies")
    return notes


def _observe_line(settings: Settings) -> str:
    config = ObserveConfig.from_env(settings.extra_env)
    if not config.metrics:
        metrics = "no metrics (FAREBOX_METRICS=off)"
    elif config.metrics_public:
        metrics = "GET /metrics open to all (FAREBOX_METRICS_PUBLIC)"
    elif settings.admin_token:
        metrics = "GET /metrics with the admin token"
    else:
        metrics = "GET /metrics off (no admin token)"
    logs = f"access lines as {config.log_format}" if config.access_log else "no access lines"
    return f"{metrics}; {logs} on stdout"


def startup_summary(settings: Settings, catalog: Catalog, payments: PaymentsConfig) -> str:
    """One short block: where it listens, its database, catalog, upstreams, payment backends
    and whether the admin API is on."""
    workers = f", {settings.workers} workers" if settings.workers > 1 else ""
    admin = (
        "on (FAREBOX_ADMIN_TOKEN is set)"
        if settings.admin_token
        else "off (set FAREBOX_ADMIN_TOKEN to turn /admin/* on)"
    )
    lines = [
        f"farebox {__version__} on http://{_host(settings.host)}:{settings.port}{workers}",
        f"  database:  {masked_database_url(settings.database_url)}",
        f"  catalog:   {_catalog_line(settings, catalog)}",
        f"  upstreams: {_upstreams_line(catalog)}",
        f"  payments:  {_payments_line(payments)}",
        f"  admin API: {admin}",
        f"  observe:   {_observe_line(settings)}",
    ]
    lines += [f"  note:      {note}" for note in _notes(settings)]
    return "\n".join(lines)


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
