"""Work a chat request buys besides tokens (the web plugin's search), billed in the same charge.

The chat service holds `max_nanos` with the prompt, runs `prepare` after the hold and before the
upstream call (it may change the request), shows it the upstream's usage (`reply_seen`), adds
`actual_nanos` to the settled cost, and lets the addon decorate the reply (a JSON completion, or
the SSE stream).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol


class RequestAddon(Protocol):
    max_nanos: int
    """The most it may cost, held before anything runs."""
    actual_nanos: int
    """What it did cost (known after `prepare`); never more than `max_nanos`."""

    async def prepare(self, call: Any) -> None:
        """Run before the upstream call; may change `call.body` (and `call.native`)."""
        ...

    def reply_seen(self, usage: dict[str, Any] | None) -> None:
        """The upstream answered, with this usage (None if it sent none, e.g. a stream cut
        short): learn what was used, before the charge settles on `actual_nanos`."""
        ...

    def decorate(self, completion: dict[str, Any]) -> None:
        """Add to a non-streamed completion (annotations, usage details)."""
        ...

    def wrap(self, stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """The SSE stream, with what the addon adds."""
        ...
