"""HMAC-signed media URLs: `/v1/media/{gen_id}/{n}?sig=...&exp=...`, valid 24 hours."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from farebox.errors import Forbidden

URL_TTL_S = 24 * 3600


class MediaSigner:
    """Signs (gen_id, n, exp) with a key derived from the instance secret."""

    def __init__(self, secret: str, ttl_s: int = URL_TTL_S) -> None:
        self._key = hmac.new(secret.encode(), b"farebox media url v1", hashlib.sha256).digest()
        self.ttl_s = ttl_s

    def _sig(self, gen_id: str, n: int, exp: int) -> str:
        mac = hmac.new(self._key, f"{gen_id}/{n}/{exp}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def path(self, gen_id: str, n: int, now: float | None = None) -> str:
        exp = int((now if now is not None else time.time()) + self.ttl_s)
        return f"/v1/media/{gen_id}/{n}?sig={self._sig(gen_id, n, exp)}&exp={exp}"

    def verify(self, gen_id: str, n: int, sig: str, exp: str, now: float | None = None) -> None:
        """Raises Forbidden unless `sig` signs (gen_id, n, exp) and `exp` has not passed."""
        if not exp.isdigit() or not sig:
            raise Forbidden("This media URL is missing its signature (sig and exp).")
        if not hmac.compare_digest(self._sig(gen_id, n, int(exp)), sig):
            raise Forbidden("This media URL's signature is not valid.")
        if int(exp) < (now if now is not None else time.time()):
            raise Forbidden(
                "This media URL has expired (they are valid for 24 hours). Generate again, or "
                "fetch the file again from the job for a fresh URL."
            )
