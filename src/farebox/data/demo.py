"""The shipped data catalog answered by `farebox sim` (for `farebox serve --demo` and tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from farebox.sim.data_common import SIM_DATA_BASES, SIM_TOKEN_PATHS

from .loader import DEFAULT_DATA_CATALOG_PATH, data_catalog_from_dict
from .model import DataCatalog

SIM_KEY = "sim"


def sim_data_catalog(
    sim_url: str,
    *,
    faults: str = "",
    timeout_s: float | None = None,
    base: Path = DEFAULT_DATA_CATALOG_PATH,
) -> DataCatalog:
    """Every shipped data endpoint at its real price, each upstream pointed at the simulator
    (under `/sim/{faults}` when given) with a placeholder key."""
    return data_catalog_from_dict(
        *sim_data_dict(sim_url, faults=faults, timeout_s=timeout_s, base=base)
    )


def sim_data_dict(
    sim_url: str,
    *,
    faults: str = "",
    timeout_s: float | None = None,
    base: Path = DEFAULT_DATA_CATALOG_PATH,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The catalog file's data rerouted to the simulator, and the environment its keys need."""
    data: dict[str, Any] = orjson.loads(base.read_bytes())
    prefix = f"/sim/{faults}" if faults else ""
    env: dict[str, str] = {}
    for name, upstream in data["upstreams"].items():
        upstream["base_url"] = sim_url + prefix + SIM_DATA_BASES[name]
        if timeout_s is not None:
            upstream["timeout_s"] = timeout_s
        auth = upstream.get("auth", {})
        oauth = auth.get("oauth2_client_credentials")
        if oauth is not None:
            oauth["token_url"] = sim_url + SIM_TOKEN_PATHS[name]
            env[oauth["client_id_env"]] = SIM_KEY
            env[oauth["client_secret_env"]] = SIM_KEY
        elif auth.get("env"):
            env[auth["env"]] = SIM_KEY
    return data, env
