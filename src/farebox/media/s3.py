"""S3-compatible object storage (AWS S3, MinIO, R2, ...) with AWS Signature Version 4,
over the pooled aiohttp client: PUT to store, GET to serve. Path-style URLs
(`{endpoint}/{bucket}/{key}`), which every S3-compatible service accepts."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

import aiohttp

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True)
class S3Config:
    endpoint: str  # e.g. https://s3.us-east-1.amazonaws.com or http://127.0.0.1:9000
    bucket: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    prefix: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> S3Config | None:
        """FAREBOX_MEDIA_S3_BUCKET turns it on; _ENDPOINT, _REGION, _PREFIX,
        _ACCESS_KEY_ID and _SECRET_ACCESS_KEY (or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)."""
        bucket = env.get("FAREBOX_MEDIA_S3_BUCKET")
        if not bucket:
            return None
        region = env.get("FAREBOX_MEDIA_S3_REGION") or "us-east-1"
        return cls(
            endpoint=(
                env.get("FAREBOX_MEDIA_S3_ENDPOINT") or f"https://s3.{region}.amazonaws.com"
            ).rstrip("/"),
            bucket=bucket,
            access_key=env.get("FAREBOX_MEDIA_S3_ACCESS_KEY_ID")
            or env.get("AWS_ACCESS_KEY_ID", ""),
            secret_key=env.get("FAREBOX_MEDIA_S3_SECRET_ACCESS_KEY")
            or env.get("AWS_SECRET_ACCESS_KEY", ""),
            region=region,
            prefix=env.get("FAREBOX_MEDIA_S3_PREFIX", ""),
        )


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sign_v4(
    method: str,
    url: str,
    headers: Mapping[str, str],
    payload_sha256: str,
    access_key: str,
    secret_key: str,
    region: str,
    when: datetime,
    service: str = "s3",
) -> str:
    """The `Authorization` header value for a request (every given header is signed)."""
    parts = urlsplit(url)
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    signed = {k.lower(): " ".join(str(v).split()) for k, v in headers.items()}
    signed["host"] = parts.netloc
    names = sorted(signed)
    query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
        for k, v in sorted([*p.split("=", 1), ""][:2] for p in parts.query.split("&") if p)
    )
    canonical = "\n".join(
        [
            method,
            quote(parts.path or "/", safe="/-_.~"),
            query,
            "".join(f"{n}:{signed[n]}\n" for n in names),
            ";".join(names),
            payload_sha256,
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(
        _hmac(_hmac(_hmac(("AWS4" + secret_key).encode(), day), region), service), "aws4_request"
    )
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )


class S3Storage:
    def __init__(self, config: S3Config) -> None:
        self.config = config
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=300), trust_env=True
            )
        return self._session

    def _url(self, key: str) -> str:
        return f"{self.config.endpoint}/{self.config.bucket}/{quote(self.config.prefix + key)}"

    def _headers(
        self, method: str, url: str, payload: bytes, extra: Mapping[str, str]
    ) -> dict[str, str]:
        digest = hashlib.sha256(payload).hexdigest() if payload else EMPTY_SHA256
        now = datetime.now(UTC)
        headers = {
            **extra,
            "x-amz-content-sha256": digest,
            "x-amz-date": now.strftime("%Y%m%dT%H%M%SZ"),
        }
        headers["Authorization"] = sign_v4(
            method,
            url,
            headers,
            digest,
            self.config.access_key,
            self.config.secret_key,
            self.config.region,
            now,
        )
        return headers

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        url = self._url(key)
        headers = self._headers("PUT", url, data, {"Content-Type": content_type})
        async with self._client().put(url, data=data, headers=headers) as response:
            if response.status >= 300:
                body = await response.text()
                raise OSError(f"S3 PUT {key} answered HTTP {response.status}: {body[:200]}")

    async def get(self, key: str) -> bytes | None:
        url = self._url(key)
        headers = self._headers("GET", url, b"", {})
        async with self._client().get(url, headers=headers) as response:
            if response.status == 404:
                return None
            if response.status >= 300:
                raise OSError(f"S3 GET {key} answered HTTP {response.status}")
            return await response.read()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
