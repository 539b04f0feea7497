"""402 errors. `PaymentRequired` carries its challenge headers; the app's one error mapping
(api/responses.py) adds them to the OpenAI error envelope."""

from __future__ import annotations

from typing import Any

from farebox.errors import FareboxError


class PaymentRequired(FareboxError):
    """402 with a fresh challenge (`WWW-Authenticate` for each scheme) and the price in the body."""

    status = 402
    type = "payment_required"
    code = "payment_required"

    def __init__(
        self,
        message: str,
        headers: list[tuple[str, str]],
        *,
        code: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message, **extra)
        self.headers = [*headers, ("cache-control", "no-store")]
        if code is not None:
            self.code = code


class CredentialRejected(Exception):
    """A presented credential that buys nothing; `code` names why (the Payment draft's problem
    types), `message` says it to a person. The service answers it with a fresh challenge."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
