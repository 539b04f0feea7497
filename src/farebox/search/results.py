"""The search port's values: what is asked, what comes back, and how it fails."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class SearchQuery:
    text: str
    max_results: int
    include_domains: tuple[str, ...] = ()
    exclude_domains: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SearchResult:
    url: str
    title: str
    content: str
    published: str | None = None


class SearchFailed(Exception):
    """A backend could not answer (unreachable, error status, unreadable reply)."""


class SearchBackend(Protocol):
    name: str
    kind: str  # "exa", "serper", "brave" or "searxng"

    async def search(self, query: SearchQuery) -> list[SearchResult]:
        """At most `query.max_results` results; raises SearchFailed."""
        ...

    async def close(self) -> None: ...


def domain_of(url: str) -> str:
    """`https://www.example.com/a` -> `www.example.com`."""
    rest = url.split("://", 1)[-1]
    return rest.split("/", 1)[0].split("@")[-1].split(":")[0].lower()


def domain_allowed(url: str, include: tuple[str, ...], exclude: tuple[str, ...]) -> bool:
    """Whether a result's domain (or a parent domain) passes the include/exclude lists."""
    host = domain_of(url)

    def matches(domains: tuple[str, ...]) -> bool:
        return any(host == d or host.endswith("." + d) for d in domains)

    return (not include or matches(include)) and not matches(exclude)
