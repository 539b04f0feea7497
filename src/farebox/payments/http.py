"""A small JSON-over-HTTP client for payment backends (aiohttp, one pooled session)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson

from farebox.observe.context import request_id_header
from farebox.payments.errors import PaymentBackendError

log = logging.getLogger("farebox.payments")


class BackendHTTP:
    def __init__(
        self, base_url: str, headers: Mapping[str, str], name: str, timeout_s: float = 15
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = dict(headers)
        self._name = name
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self._headers, timeout=self._timeout, trust_env=True
            )
        return self._session

    async def request(
        self, method: str, path: str, body: Any = None, params: Mapping[str, str] | None = None
    ) -> Any:
        data = None if body is None else orjson.dumps(body)
        headers = request_id_header()  # the top-up request's id, for the backend's logs
        if data is not None:
            headers["Content-Type"] = "application/json"
        try:
            async with self._client().request(
                method, self.base_url + path, data=data, params=params, headers=headers
            ) as resp:
                raw = await resp.read()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise PaymentBackendError(
                f"The payment backend ({self._name}) could not be reached: {type(exc).__name__}."
            ) from exc
        if status >= 400:
            # The backend's words go to the operator's log, not to the customer.
            log.warning(
                "%s answered %d to %s %s: %s",
                self._name,
                status,
                method,
                path.split("?")[0],
                raw[:300].decode("utf-8", "replace"),
            )
            raise PaymentBackendError(
                f"The payment backend ({self._name}) failed (HTTP {status}). Nothing was charged; "
                "try again shortly."
            )
        try:
            return orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError as exc:
            raise PaymentBackendError(
                f"The payment backend ({self._name}) answered something that is not JSON."
            ) from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
