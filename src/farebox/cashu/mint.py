"""The mint's HTTP API (NUT-01, 02, 03, 05): keysets and keys, swaps and melts.

Only mints the operator listed in FAREBOX_CASHU_MINTS are ever called, by the URL the operator
wrote (a token's own URL is only compared with that list). Keysets are cached per mint for a
few minutes, keys per keyset for the process's life (a keyset's keys never change: its id is
their hash). A mint's refusal (HTTP 400 with NUT-00's `{detail, code}`) is a `MintRefused`
whose code says why; no answer at all is a `MintUnavailable`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

log = logging.getLogger("farebox.cashu")

KEYSETS_TTL_S = 300.0
TOKEN_ALREADY_SPENT = 11001  # NUT errors: "Token already spent"
MAX_RESPONSE_BYTES = 1 << 20


class MintError(Exception):
    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class MintRefused(MintError):
    """The mint answered with an error: the operation did not happen."""


class MintUnavailable(MintError):
    """No usable answer (connection, timeout, 5xx, not JSON): the outcome is unknown."""


@dataclass(frozen=True, slots=True)
class Keyset:
    id: str
    unit: str
    active: bool
    input_fee_ppk: int


def _keysets(payload: Any) -> list[Keyset]:
    found: list[Keyset] = []
    for item in payload.get("keysets", []) if isinstance(payload, dict) else []:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            continue
        fee = item.get("input_fee_ppk") or 0
        found.append(
            Keyset(
                id=item["id"].lower(),
                unit=str(item.get("unit", "")),
                active=bool(item.get("active")),
                input_fee_ppk=int(fee) if isinstance(fee, int) and fee >= 0 else 0,
            )
        )
    return found


class MintClient:
    """One trusted mint."""

    def __init__(self, url: str, timeout_s: float = 20.0) -> None:
        self.url = url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._keysets: tuple[float, list[Keyset]] | None = None
        self._keys: dict[str, dict[int, str]] = {}

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout, trust_env=True)
        return self._session

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else orjson.dumps(body)
        headers = {"Content-Type": "application/json"} if data is not None else None
        try:
            async with self._client().request(
                method, self.url + path, data=data, headers=headers
            ) as resp:
                raw = await resp.content.read(MAX_RESPONSE_BYTES)
                status = resp.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise MintUnavailable(
                f"the mint {self.url} could not be reached ({type(exc).__name__})"
            ) from exc
        try:
            payload = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            payload = None
        if 400 <= status < 500 and isinstance(payload, dict):
            detail = str(payload.get("detail") or "refused")[:200]
            code = payload.get("code")
            log.info("mint %s refused %s %s: %s (%s)", self.url, method, path, detail, code)
            raise MintRefused(detail, code if isinstance(code, int) else None)
        if status >= 300 or payload is None:
            log.warning("mint %s answered %d to %s %s", self.url, status, method, path)
            raise MintUnavailable(f"the mint {self.url} failed (HTTP {status})")
        return payload

    async def keysets(self, fresh: bool = False) -> list[Keyset]:
        now = time.monotonic()
        if not fresh and self._keysets is not None and now - self._keysets[0] < KEYSETS_TTL_S:
            return self._keysets[1]
        found = _keysets(await self._call("GET", "/v1/keysets"))
        self._keysets = (now, found)
        return found

    async def keys(self, keyset_id: str) -> dict[int, str]:
        """Amount -> public key (hex) of one keyset."""
        cached = self._keys.get(keyset_id)
        if cached is not None:
            return cached
        payload = await self._call("GET", f"/v1/keys/{keyset_id}")
        for item in payload.get("keysets", []) if isinstance(payload, dict) else []:
            if isinstance(item, dict) and str(item.get("id", "")).lower() == keyset_id:
                keys = {int(amount): str(key) for amount, key in dict(item["keys"]).items()}
                self._keys[keyset_id] = keys
                return keys
        raise MintUnavailable(f"the mint {self.url} did not return keyset {keyset_id}")

    async def swap(
        self, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """POST /v1/swap; the blind signatures, in the order of `outputs`."""
        payload = await self._call("POST", "/v1/swap", {"inputs": inputs, "outputs": outputs})
        return _signatures(payload, len(outputs))

    async def melt_quote(self, bolt11: str, unit: str) -> Mapping[str, Any]:
        payload = await self._call(
            "POST", "/v1/melt/quote/bolt11", {"request": bolt11, "unit": unit}
        )
        if not isinstance(payload, dict) or not isinstance(payload.get("quote"), str):
            raise MintUnavailable(f"the mint {self.url} returned no melt quote")
        return payload

    async def melt(
        self, quote: str, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]
    ) -> Mapping[str, Any]:
        body: dict[str, Any] = {"quote": quote, "inputs": inputs}
        if outputs:
            body["outputs"] = outputs
        payload = await self._call("POST", "/v1/melt/bolt11", body)
        if not isinstance(payload, dict):
            raise MintUnavailable(f"the mint {self.url} answered the melt with no object")
        return payload

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _signatures(payload: Any, expected: int) -> list[dict[str, Any]]:
    signatures = payload.get("signatures") if isinstance(payload, dict) else None
    if not isinstance(signatures, list) or len(signatures) != expected:
        raise MintUnavailable("the mint's swap answer does not hold one signature per output")
    for sig in signatures:
        if not isinstance(sig, dict) or not isinstance(sig.get("C_"), str):
            raise MintUnavailable("the mint's swap answer holds a malformed signature")
    return signatures
