"""Why a Cashu payment buys nothing, as errors the api layer maps once. A bad token is a 400
(NUT-24) that changes nothing; a mint that does not answer is a 502."""

from __future__ import annotations

from farebox.errors import FareboxError


class CashuRejected(FareboxError):
    status = 400
    type = "invalid_request_error"
    code = "cashu_token_rejected"

    def __init__(self, code: str, message: str, **extra: object) -> None:
        super().__init__(message, param="X-Cashu", **extra)
        self.code = code


class CashuMintUnavailable(FareboxError):
    status = 502
    type = "upstream_error"
    code = "cashu_mint_unavailable"
