"""Calling a data provider: the request built from a checked call, sent with the operator's key,
and the answer mapped once to what the customer sees and pays.

- 2xx with a JSON body: the provider's body, passed back as it came (an empty result included:
  the provider charged for it). Redirects are not followed: a 3xx is a failure (502).
- 4xx caused by the request (400, 404, 409, 413, 422, ...): a 400 that quotes the provider.
- 401/403/402: the operator's credentials or credit failed: 502. 429: 503 with retry-after.
  5xx, a broken connection or a body that is not JSON: 502. No answer in time: 504.
Only the first kind is charged. Upstream URLs, methods and headers come from the operator's
catalog; a customer's values only fill the slots the catalog defines (path values URL-quoted).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from farebox.errors import InvalidRequest, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from farebox.observe.context import request_id_header

from .model import Endpoint, OAuthClient, Upstream
from .params import DataCall

log = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 8 * 1024 * 1024
_MESSAGE_CHARS = 300
_TOKEN_MARGIN_S = 60.0
_CREDENTIAL_STATUS = frozenset({401, 402, 403, 407})
USER_AGENT = "farebox"


class UpstreamRejected(InvalidRequest):
    """The provider refused the request's parameters (its 4xx). Free for the customer."""

    code = "upstream_rejected"


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    method: str
    url: str
    headers: dict[str, str]
    query: list[tuple[str, str]]
    body: bytes | None


def build_request(call: DataCall, upstream: Upstream) -> UpstreamRequest:
    """The upstream request for a checked call (without credentials)."""
    spec = call.endpoint.call
    path = spec.path
    query = list(spec.query.items())
    body: dict[str, Any] | None = orjson.loads(orjson.dumps(dict(spec.body)))
    for param in call.endpoint.params:
        if param.name not in call.values:
            continue
        value = call.values[param.name]
        if param.location == "path":
            path = path.replace(f"{{{param.to}}}", quote(_text(value), safe=""))
        elif param.location == "query":
            items = value if isinstance(value, list) else [value]
            query.extend((param.to, _text(item)) for item in items)
        elif body is not None:
            _put(body, param.to.split("."), value)
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    headers.update(upstream.headers)
    headers.update(spec.headers)
    data = None
    if spec.method == "POST":
        data = orjson.dumps(body or {})
        headers["Content-Type"] = "application/json"
    return UpstreamRequest(spec.method, upstream.base_url + path, headers, query, data)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _put(body: dict[str, Any], keys: list[str], value: Any) -> None:
    for key in keys[:-1]:
        inner = body.get(key)
        if not isinstance(inner, dict):
            inner = body[key] = {}
        body = inner
    body[keys[-1]] = value


def provider_message(raw: bytes) -> str:
    """The provider's own error sentence, from the usual JSON shapes, short and printable."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return ""
    text = _find_message(data)
    cleaned = "".join(c if c.isprintable() else " " for c in text)
    return cleaned[:_MESSAGE_CHARS].strip()


def _find_message(data: Any) -> str:
    if isinstance(data, str):
        return data
    if isinstance(data, list):
        return _find_message(data[0]) if data else ""
    if not isinstance(data, dict):
        return ""
    for key in ("message", "detail", "details", "error_description", "error", "errors", "title"):
        if key in data:
            found = _find_message(data[key])
            if found:
                return found
    return ""


class DataClient:
    """One pooled HTTP client for every data upstream; OAuth tokens cached per upstream."""

    def __init__(self, max_connections: int = 64) -> None:
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._tokens: dict[str, tuple[str, float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=None), trust_env=True
            )
        return self._session

    async def send(self, call: DataCall, upstream: Upstream) -> bytes:
        """The provider's 2xx JSON body for `call`, or the domain error for its failure."""
        endpoint = call.endpoint
        try:
            async with asyncio.timeout(upstream.timeout_s):
                request = build_request(call, upstream)
                await self._authenticate(request, upstream)
                status, raw = await self._exchange(request, upstream)
        except TimeoutError as exc:
            log.warning(
                "data %s: %s did not answer in %gs", endpoint.id, upstream.name, upstream.timeout_s
            )
            raise UpstreamTimeout(
                f"{endpoint.provider} did not answer in time. Nothing was charged."
            ) from exc
        except aiohttp.ClientError as exc:
            log.warning("data %s: %s unreachable: %r", endpoint.id, upstream.name, exc)
            raise UpstreamError(
                f"{endpoint.provider} could not be reached. Nothing was charged."
            ) from exc
        if not 200 <= status < 300:
            if status == 401 and upstream.auth.oauth is not None:
                self._tokens.pop(upstream.name, None)
            raise _failure(endpoint, upstream, status, raw)
        try:
            orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            log.warning("data %s: %s sent a body that is not JSON", endpoint.id, upstream.name)
            raise UpstreamError(
                f"{endpoint.provider} sent an unreadable answer. Nothing was charged."
            ) from exc
        return raw

    async def _exchange(self, request: UpstreamRequest, upstream: Upstream) -> tuple[int, bytes]:
        async with self._client().request(
            request.method,
            request.url,
            params=request.query,
            data=request.body,
            headers={**request_id_header(), **request.headers},
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(sock_connect=upstream.connect_timeout_s),
        ) as response:
            return response.status, await _read_capped(response, upstream)

    async def _authenticate(self, request: UpstreamRequest, upstream: Upstream) -> None:
        auth = upstream.auth
        if auth.oauth is not None:
            request.headers["Authorization"] = "Bearer " + await self._token(upstream, auth.oauth)
        elif auth.header is not None and auth.key:
            request.headers[auth.header] = f"{auth.scheme} {auth.key}".strip()

    async def _token(self, upstream: Upstream, client: OAuthClient) -> str:
        cached = self._tokens.get(upstream.name)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        lock = self._locks.setdefault(upstream.name, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(upstream.name)
            if cached is not None and cached[1] > time.monotonic():
                return cached[0]
            token, lifetime = await self._fetch_token(upstream, client)
            self._tokens[upstream.name] = (token, time.monotonic() + lifetime - _TOKEN_MARGIN_S)
            return token

    async def _fetch_token(self, upstream: Upstream, client: OAuthClient) -> tuple[str, float]:
        basic = aiohttp.encode_basic_auth(client.client_id or "", client.client_secret or "")
        async with self._client().post(
            client.token_url,
            data={"grant_type": "client_credentials"},
            headers={
                "Authorization": basic,
                "User-Agent": upstream.headers.get("User-Agent", USER_AGENT),
            },
            allow_redirects=False,
        ) as response:
            raw = await _read_capped(response, upstream)
            status = response.status
        try:
            data = orjson.loads(raw) if status < 400 else None
        except orjson.JSONDecodeError:
            data = None
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            log.error(
                "data upstream %s: token request refused (HTTP %s); check %s",
                upstream.name,
                status,
                upstream.auth.missing,
            )
            raise UpstreamError(
                f"The data provider {upstream.name} refused this server's credentials. "
                "Nothing was charged."
            )
        expires = data.get("expires_in") if isinstance(data, dict) else None
        lifetime = float(expires) if isinstance(expires, int) and expires > 0 else 3600.0
        return token, max(lifetime, _TOKEN_MARGIN_S * 2)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


async def _read_capped(response: aiohttp.ClientResponse, upstream: Upstream) -> bytes:
    declared = response.content_length
    if declared is not None and declared > MAX_RESPONSE_BYTES:
        raise _too_large(upstream)
    parts: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(65536):
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise _too_large(upstream)
        parts.append(chunk)
    return b"".join(parts)


def _too_large(upstream: Upstream) -> UpstreamError:
    log.warning("data upstream %s: answer over %d bytes", upstream.name, MAX_RESPONSE_BYTES)
    return UpstreamError(
        f"The data provider sent more than {MAX_RESPONSE_BYTES} bytes. Nothing was charged."
    )


def _failure(endpoint: Endpoint, upstream: Upstream, status: int, raw: bytes) -> Exception:
    said = provider_message(raw)
    quoted = f": {said}" if said else ""
    if status in _CREDENTIAL_STATUS:
        log.error(
            "data %s: %s refused the operator's credentials or credit (HTTP %d); check %s",
            endpoint.id,
            upstream.name,
            status,
            upstream.auth.missing or "it",
        )
        return UpstreamError(
            f"{endpoint.provider} refused this server's credentials (HTTP {status}). The "
            "operator will see it in the log. Nothing was charged."
        )
    if status == 429:
        return UpstreamUnavailable(
            f"{endpoint.provider} is rate limiting this server; retry shortly. Nothing was charged."
        )
    if status == 408:
        return UpstreamTimeout(f"{endpoint.provider} timed out. Nothing was charged.")
    if 400 <= status < 500:
        return UpstreamRejected(
            f"{endpoint.provider} rejected the request (HTTP {status}){quoted}. "
            "Nothing was charged."
        )
    log.warning("data %s: %s answered HTTP %d", endpoint.id, upstream.name, status)
    return UpstreamError(f"{endpoint.provider} failed (HTTP {status}). Nothing was charged.")
