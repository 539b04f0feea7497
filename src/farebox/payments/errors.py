"""Payment errors, mapped to HTTP once by the app like every other domain error."""

from __future__ import annotations

from farebox.errors import FareboxError, InvalidRequest, Unauthorized


class MethodUnavailable(InvalidRequest):
    code = "payment_method_unavailable"


class AmountOutOfRange(InvalidRequest):
    code = "amount_out_of_range"


class WebhookRejected(Unauthorized):
    """A webhook delivery without a valid signature (or unreadable): nothing is done."""

    type = "invalid_request_error"
    code = "invalid_webhook"


class PaymentBackendError(FareboxError):
    """The payment backend failed or answered something we cannot use. Nothing was charged."""

    status = 502
    type = "upstream_error"
    code = "payment_backend_error"
