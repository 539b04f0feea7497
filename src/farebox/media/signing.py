"""HMAC-signed URLs, valid 24 hours: media files (`/v1/media/{gen_id}/{n}?sig=...&exp=...`) and
video job status (`/v1/videos/{id}?sig=...&exp=...`, pollable with no API key).

Each kind signs with its own key derived from the instance secret, so a signature for one can
never open the other. `sig` and `exp` come from the customer: anything that is not the expected
short ASCII is refused with a 403 before any arithmetic or comparison (never a 500).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from farebox.errors import Forbidden

URL_TTL_S = 24 * 3600
_MAX_EXP_DIGITS = 12
"""Seconds since 1970 fit in 11 digits until the year 5138."""
_MAX_SIG_CHARS = 64
"""A base64url SHA-256 MAC is 43 characters."""


class UrlSigner:
    """Signs (subject, exp) with a key derived from the instance secret and a purpose label."""

    def __init__(
        self, secret: str, purpose: bytes, what: str, renew: str, ttl_s: int = URL_TTL_S
    ) -> None:
        self._key = hmac.new(secret.encode(), purpose, hashlib.sha256).digest()
        self._what = what
        self._renew = renew
        self.ttl_s = ttl_s

    def sign(self, subject: str, exp: int) -> str:
        mac = hmac.new(self._key, f"{subject}/{exp}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def expiry(self, now: float | None = None) -> int:
        return int((now if now is not None else time.time()) + self.ttl_s)

    def query(self, subject: str, now: float | None = None) -> str:
        """`sig=...&exp=...` for `subject`, valid for the signer's lifetime from `now`."""
        exp = self.expiry(now)
        return f"sig={self.sign(subject, exp)}&exp={exp}"

    def verify(self, subject: str, sig: str, exp: str, now: float | None = None) -> None:
        """Raises Forbidden unless `sig` signs (subject, exp) and `exp` has not passed."""
        if not sig or not exp:
            raise Forbidden(f"This {self._what} URL is missing its signature (sig and exp).")
        well_formed = (
            exp.isascii()
            and exp.isdigit()
            and len(exp) <= _MAX_EXP_DIGITS
            and sig.isascii()
            and len(sig) <= _MAX_SIG_CHARS
        )
        if not well_formed or not hmac.compare_digest(
            self.sign(subject, int(exp)).encode(), sig.encode()
        ):
            raise Forbidden(f"This {self._what} URL's signature is not valid.")
        if int(exp) < (now if now is not None else time.time()):
            raise Forbidden(
                f"This {self._what} URL has expired (they are valid for 24 hours). {self._renew}"
            )


class MediaSigner:
    """Signed media URLs: (gen_id, n, exp); the key label of the first version is kept, so URLs
    handed out before stay valid."""

    def __init__(self, secret: str, ttl_s: int = URL_TTL_S) -> None:
        renew = "Generate again, or fetch the file again from the job for a fresh URL."
        self._urls = UrlSigner(secret, b"farebox media url v1", "media", renew, ttl_s)
        self.ttl_s = ttl_s

    def path(self, gen_id: str, n: int, now: float | None = None) -> str:
        return f"/v1/media/{gen_id}/{n}?{self._urls.query(f'{gen_id}/{n}', now)}"

    def verify(self, gen_id: str, n: int, sig: str, exp: str, now: float | None = None) -> None:
        """Raises Forbidden unless `sig` signs (gen_id, n, exp) and `exp` has not passed."""
        self._urls.verify(f"{gen_id}/{n}", sig, exp, now)


class StatusSigner:
    """Signed video status URLs: `/v1/videos/{job_id}?sig=&exp=`, pollable without an API key
    (the only way a payer with no account can follow a job), expiring like media URLs."""

    def __init__(self, secret: str, ttl_s: int = URL_TTL_S) -> None:
        renew = "With an API key, GET /v1/videos/{id} still answers; the job is settled anyway."
        self._urls = UrlSigner(secret, b"farebox video status url v1", "status", renew, ttl_s)

    def path(self, job_id: str, now: float | None = None) -> str:
        return f"/v1/videos/{job_id}?{self._urls.query(job_id, now)}"

    def verify(self, job_id: str, sig: str, exp: str, now: float | None = None) -> None:
        self._urls.verify(job_id, sig, exp, now)
