"""The provider port: what every upstream adapter takes and gives back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

from farebox.catalog.model import ProviderConfig


class UpstreamFailure(Exception):
    """An upstream call failed before any output reached the customer.

    `retryable` failures (429, 5xx, connect errors, timeouts) move on to the model's next route;
    others (a 400 for a bad request) go back to the customer as they are.

    `message` may reach the customer: it names the route (the catalog's provider name) and what
    went wrong in fixed words, never an upstream's address. What the operator needs to find the
    cause (the exception's text: host, port, errno) goes in `detail`, which is only logged.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        retryable: bool = True,
        body: bytes | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.provider = provider
        self.status = status
        self.retryable = retryable
        self.body = body

    def for_log(self) -> str:
        return f"{self.message} ({self.detail})" if self.detail else self.message


class UpstreamReply(Protocol):
    """An upstream response whose status was 2xx."""

    status: int
    content_type: str

    async def read(self) -> bytes:
        """The whole body (non-streaming responses)."""
        ...

    def chunks(self) -> AsyncIterator[bytes]:
        """Raw body bytes as they arrive (streaming responses), starting with any primed chunk."""
        ...

    async def prime(self) -> None:
        """Read the first chunk now, so a failure before any output can still fall back."""
        ...

    def close(self) -> None:
        """Drop the upstream connection (stops a stream the customer no longer pays for)."""
        ...


class ChatProvider(Protocol):
    config: ProviderConfig

    async def chat(
        self, upstream_model: str, body: dict[str, Any], stream: bool, headers: Mapping[str, str]
    ) -> UpstreamReply: ...

    async def close(self) -> None: ...
