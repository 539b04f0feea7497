"""Turning a modality's PaidResult into a response that shows its cost."""

from __future__ import annotations

from starlette.responses import Response, StreamingResponse

from farebox.modalities.paid import PaidResult
from farebox.money import format_usd


def paid_response(result: PaidResult) -> Response:
    """The body (or stream) with `x-farebox-cost` and `x-farebox-request-id` headers."""
    headers = {
        **result.headers,
        "x-farebox-request-id": result.request_id,
        "x-farebox-cost": format_usd(result.cost_nanos),
    }
    if result.stream is not None:
        return StreamingResponse(
            result.stream, status_code=result.status, media_type=result.media_type, headers=headers
        )
    return Response(
        result.body, status_code=result.status, media_type=result.media_type, headers=headers
    )
