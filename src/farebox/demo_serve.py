"""`farebox serve --demo`: the gateway with a simulator, a simulated enclave, a demo catalog
and a funded demo account, in one process. Its own module so that `farebox serve` without
--demo never imports the simulator (cli.py imports this only for --demo)."""

from __future__ import annotations

import socket
from pathlib import Path

import click
import uvicorn

from farebox.app import create_app
from farebox.catalog.errors import CatalogError
from farebox.demo import (
    build_demo_catalog,
    build_demo_data_catalog,
    create_demo_account,
    demo_banner,
    enable_dashboard,
    enable_dev_wallet,
)
from farebox.net.connections import raise_open_file_limit, uvicorn_config
from farebox.private.demo import demo_private_banner, write_demo_policy
from farebox.settings import Settings
from farebox.sim.config import SimConfig
from farebox.sim.enclave import start_enclave
from farebox.sim.server import start_sim
from farebox.startup import farebox_command

__all__ = ["enable_dashboard", "enable_dev_wallet", "serve_demo"]


async def serve_demo(
    settings: Settings, log_level: str, sock: socket.socket, generated: bool
) -> None:
    sim = await start_sim(SimConfig(tokens_per_second=200.0))
    enclave = await start_enclave(SimConfig(tokens_per_second=200.0))
    try:
        catalog = build_demo_catalog(sim.url, enclave.url, settings.catalog_path)
    except CatalogError as exc:
        sock.close()
        await enclave.close()
        await sim.close()
        raise click.ClickException(f"catalog: {exc}") from exc
    app = create_app(settings, catalog=catalog, data_catalog=build_demo_data_catalog(sim.url))
    services = app.state.services
    account = await create_demo_account(services)
    policy = write_demo_policy(enclave.identity.policy_json(), Path.cwd())
    click.echo(
        demo_banner(
            settings,
            sim.url,
            account.credit_id,
            account.api_key,
            account.account_id,
            farebox_command(),
            generated,
        )
    )
    gateway = f"http://{settings.host}:{settings.port}"
    click.echo("\n".join(demo_private_banner(gateway, account.api_key, policy)))
    raise_open_file_limit()
    config = uvicorn_config(app, settings, log_level, loop="none")
    try:
        await uvicorn.Server(config).serve(sockets=[sock])
    finally:
        sock.close()
        await enclave.close()
        await sim.close()
