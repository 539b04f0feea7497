"""The data-enrichment catalog's value types: parameters, upstreams, endpoints, the catalog.

An endpoint is one fixed-price call under `/v1/data` (PPQ's `/api/{provider}/{action}` family and
our `/x/{action}` family): the parameters a customer may send, each bounded; where each one goes
in the upstream request (JSON body, query string or path); the upstream that answers it; and its
price, which is the provider's public price plus a margin, each with its source. Prices are
integer nanodollars, fixed per call.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from farebox.errors import InvalidRequest, NotFound

PARAM_TYPES: tuple[str, ...] = ("string", "url", "integer", "number", "boolean", "array", "object")
ITEM_TYPES: tuple[str, ...] = ("string", "url", "integer", "number")
LOCATIONS: tuple[str, ...] = ("body", "query", "path")
METHODS: tuple[str, ...] = ("GET", "POST")
UPSTREAM_METHODS: tuple[str, ...] = ("GET", "POST")
DATA_PREFIX = "/v1/data"

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Param:
    """One request parameter: its type and bounds, and where it goes upstream."""

    name: str
    type: str
    required: bool = False
    description: str = ""
    enum: tuple[str | int | float, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    max_length: int = 1000
    """Longest string (or string item of an array), in characters."""
    pattern: re.Pattern[str] | None = None
    """A string (or string item) must match it whole. With `capture`, its first group is what is
    sent upstream (e.g. a post id taken from a post URL)."""
    capture: bool = False
    items: str = "string"
    """The type of an array's items."""
    min_items: int = 0
    max_items: int = 20
    max_bytes: int = 4096
    """Largest object, as JSON."""
    default: Any = None
    """Sent upstream when the parameter is absent (None: nothing is sent)."""
    to: str = ""
    """The upstream name; dotted for a nested body field (`contents.text`)."""
    location: str = "body"


@dataclass(frozen=True, slots=True)
class OAuthClient:
    """OAuth 2 client credentials: a bearer token fetched from `token_url`, cached until it
    expires (Reddit's app-only flow)."""

    token_url: str
    client_id_env: str
    client_secret_env: str
    client_id: str | None = field(default=None, repr=False)
    client_secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Auth:
    """How an upstream call is authenticated: a key in a header (with an optional scheme such
    as `Bearer`), read from the environment variable `env`; or an OAuth client."""

    header: str | None = None
    scheme: str = ""
    env: str | None = None
    key: str | None = field(default=None, repr=False)
    oauth: OAuthClient | None = None

    @property
    def configured(self) -> bool:
        if self.oauth is not None:
            return bool(self.oauth.client_id and self.oauth.client_secret)
        return self.header is None or bool(self.key)

    @property
    def missing(self) -> str:
        """The environment variables still to set (for the operator's log)."""
        if self.oauth is not None:
            return f"{self.oauth.client_id_env} and {self.oauth.client_secret_env}"
        return self.env or ""


@dataclass(frozen=True, slots=True)
class Upstream:
    """A data provider's API: requests go to `base_url` + the endpoint's upstream path."""

    name: str
    base_url: str
    auth: Auth
    headers: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    connect_timeout_s: float = 5.0
    timeout_s: float = 30.0
    """The whole upstream call, answer included; past it the call fails with 504 and is free."""
    docs: str = ""


@dataclass(frozen=True, slots=True)
class UpstreamCall:
    """How an endpoint reaches its upstream: the method, a path with `{name}` slots, and
    static headers, query values and body fields sent with every call."""

    upstream: str
    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    query: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    body: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One fixed-price data call."""

    id: str
    provider: str
    path: str
    """Under /v1/data, e.g. `/api/exa/search`."""
    method: str
    description: str
    params: tuple[Param, ...]
    call: UpstreamCall
    price: int
    """Nanodollars per call."""
    cost: int | None = None
    """The provider's public price per call (nanodollars), when known."""
    cost_source: str = ""
    one_of: tuple[tuple[str, ...], ...] = ()
    """Groups of parameters of which a request must send at least one each."""

    @property
    def public_path(self) -> str:
        return DATA_PREFIX + self.path

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


@dataclass(frozen=True)
class DataCatalog:
    """Every data endpoint by id, the upstreams they call, and an index by (method, path)."""

    endpoints: Mapping[str, Endpoint]
    upstreams: Mapping[str, Upstream]
    _by_path: Mapping[str, Mapping[str, Endpoint]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_path: dict[str, dict[str, Endpoint]] = {}
        for endpoint in self.endpoints.values():
            by_path.setdefault(endpoint.path, {})[endpoint.method] = endpoint
        object.__setattr__(self, "_by_path", by_path)

    def find(self, method: str, path: str) -> Endpoint:
        """The endpoint at `path` (under /v1/data) for `method`: NotFound, or a 405."""
        methods = self._by_path.get(path)
        if not methods:
            raise NotFound(
                f"There is no data endpoint {DATA_PREFIX}{path}. GET {DATA_PREFIX}/endpoints "
                "lists them all with their parameters and prices."
            )
        endpoint = methods.get(method)
        if endpoint is None:
            allowed = ", ".join(sorted(methods))
            wrong = InvalidRequest(
                f"{method} is not allowed on {DATA_PREFIX}{path}; use {allowed}."
            )
            wrong.status = 405
            raise wrong
        return endpoint

    def upstream(self, endpoint: Endpoint) -> Upstream:
        return self.upstreams[endpoint.call.upstream]
