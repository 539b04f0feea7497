"""Private models in `farebox serve --demo`: the shipped ones, served by the simulator's enclave."""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path

from farebox.catalog.model import Catalog, CatalogModel, ProviderConfig, Route

DEMO_ENCLAVE = "sim-enclave"
DEMO_POLICY_FILE = "demo-enclave-policy.json"


def demo_private_models(
    shipped: Catalog, enclave_url: str
) -> tuple[dict[str, CatalogModel], ProviderConfig]:
    """The shipped private models at their prices, each routed to the simulated enclave."""
    provider = ProviderConfig(
        name=DEMO_ENCLAVE,
        kind="ehbp",
        base_url=enclave_url,
        api_key=None,
        usage_report="tinfoil",
        attestation_url=enclave_url + "/attestation",
    )
    models = {
        model_id: dataclasses.replace(
            model, routes=(Route(DEMO_ENCLAVE, model.routes[0].upstream_model),)
        )
        for model_id, model in shipped.models.items()
        if model.private
    }
    return models, provider


def write_demo_policy(policy: bytes, folder: Path) -> Path:
    path = folder / DEMO_POLICY_FILE
    path.write_bytes(policy)
    return path


def demo_private_banner(gateway: str, api_key: str, policy_path: Path) -> list[str]:
    command = (
        f"farebox private-proxy --gateway {gateway} --api-key {api_key} "
        f"--policy {shlex.quote(policy_path.name)}"
    )
    return [
        "Private models (end-to-end encrypted, through the simulated enclave):",
        f"  {command}",
        "  then use private/kimi-k2-5 etc. at http://127.0.0.1:8787/v1",
        f"  WARNING: {policy_path.name} trusts a SIMULATED enclave whose test root key was just",
        "  generated on this machine: it proves nothing about privacy. Demos only.",
        "",
    ]
