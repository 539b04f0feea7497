"""`farebox private-proxy`: run the local private proxy."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click
import uvicorn

from farebox.private.policy import Policy, PolicyError
from farebox.private.proxy import PrivateProxy, create_proxy_app

_EPILOG = """
\b
Point any OpenAI client at it, with a private model:
  OpenAI(base_url="http://127.0.0.1:8787/v1", api_key="unused")
  model="private/kimi-k2-5"
\b
GET /health says whether the enclave verified (and why not); GET /v1/models lists the private
models. Nothing is sent until the attestation bundle verifies against the policy: the package's
(which trusts no enclave yet) or --policy FILE. The policy never comes from the gateway.
"""


@click.command(
    "private-proxy",
    epilog=_EPILOG,
    context_settings={"show_default": True, "max_content_width": 100},
)
@click.option("--gateway", required=True, help="The farebox gateway's base URL.")
@click.option(
    "--api-key",
    required=True,
    envvar="FAREBOX_API_KEY",
    help="Your farebox API key (or set FAREBOX_API_KEY, which keeps it out of `ps`).",
)
@click.option("--host", default="127.0.0.1", help="Address to listen on (keep it loopback).")
@click.option("--port", default=8787, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option(
    "--policy",
    "policy_path",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Trust policy (roots and code measurements). Default: the one shipped with farebox.",
)
@click.option("--log-level", default="warning")
def private_proxy_command(
    gateway: str, api_key: str, host: str, port: int, policy_path: Path | None, log_level: str
) -> None:
    """Run the local OpenAI-compatible proxy for private (end-to-end encrypted) models.

    It verifies the enclave's attestation, seals every request to the enclave's attested HPKE
    key (EHBP) and opens the answers, so the gateway only ever relays ciphertext.
    """
    if not gateway.startswith(("http://", "https://")):
        raise click.BadParameter("must be an http:// or https:// URL", param_hint="--gateway")
    try:
        policy = Policy.load(policy_path) if policy_path else Policy.packaged()
    except PolicyError as exc:
        raise click.ClickException(str(exc)) from exc
    logging.basicConfig(stream=sys.stderr, format="private-proxy: %(message)s")
    logging.getLogger("farebox.private_proxy").setLevel(logging.INFO)
    if policy.simulator:
        click.echo(
            "WARNING: this policy trusts a simulated enclave (its root key was made by "
            "`farebox serve --demo`); it proves nothing about privacy.",
            err=True,
        )
    click.echo(f"private proxy on http://{host}:{port}/v1 -> {gateway} (policy: {policy.source})")
    app = create_proxy_app(PrivateProxy(gateway, api_key, policy))
    uvicorn.run(app, host=host, port=port, access_log=False, log_level=log_level)
