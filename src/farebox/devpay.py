"""`farebox dev pay`: ask the running gateway's dev wallet to pay an invoice, over HTTP.

The gateway holds the dev wallet (its key comes from the instance secret, its invoices from its
database), so the command needs only the gateway's URL and admin token, wherever it is run from
(see api/dev.py for how the endpoint is guarded).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8000"


class DevPayError(Exception):
    """What went wrong, said so that the next step is clear."""


@dataclass(frozen=True)
class DevPayment:
    preimage: str
    topup: dict[str, Any] | None


def pay_through_gateway(url: str, admin_token: str | None, bolt11: str) -> DevPayment:
    if not admin_token:
        raise DevPayError(
            "farebox dev pay asks the running gateway's dev wallet to pay, and needs its admin "
            "token: set FAREBOX_ADMIN_TOKEN or pass --admin-token (farebox serve --demo prints "
            "the whole command)."
        )
    if not url.startswith(("http://", "https://")):
        raise DevPayError(f"--url must be the gateway's http:// address, not {url[:80]!r}.")
    endpoint = url.rstrip("/") + "/admin/dev/pay"
    request = urllib.request.Request(
        endpoint,
        data=json.dumps({"bolt11": bolt11.strip()}).encode(),
        headers={"Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            body = json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        raise DevPayError(f"{url} refused: {_message(exc)}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DevPayError(
            f"no farebox answers at {url} ({reason}). Start `farebox serve --demo`, or pass "
            "--url with the address it printed."
        ) from None
    return DevPayment(preimage=str(body["preimage"]), topup=body.get("topup"))


def _message(exc: urllib.error.HTTPError) -> str:
    try:
        error = json.loads(exc.read()).get("error") or {}
        return str(error.get("message") or exc.reason)
    except (ValueError, AttributeError):
        return f"HTTP {exc.code} {exc.reason}"
