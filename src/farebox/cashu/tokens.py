"""Cashu's wire formats: V4 tokens (`cashuB` + base64url of CBOR, NUT-00) in and out, and NUT-18
payment requests (`creqA` + base64url of CBOR) out.

A token arrives in a request header from anyone, so it is bounded before it is decoded (its
length) and while it is read (the number of keysets and proofs, each field's type and size).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from farebox import optional

TOKEN_PREFIX = "cashuB"
MAX_TOKEN_CHARS = 16_384  # ~60 proofs; a larger payment is better sent as fewer, larger proofs
MAX_PROOFS = 64
MAX_AMOUNT = 2**42  # one proof worth more than 43,980 BTC is not a real one
MAX_SECRET_CHARS = 1024
MAX_URL_CHARS = 256


class TokenError(ValueError):
    """A token that is not a well-formed cashuB token (the message says what is wrong)."""


@dataclass(frozen=True, slots=True)
class Proof:
    amount: int
    keyset_id: str  # hex, as written in the token (a short id is expanded before any swap)
    secret: str
    C: str  # hex
    witness: str | None = None

    def wire(self) -> dict[str, Any]:
        """The JSON form the mint's API takes."""
        out: dict[str, Any] = {
            "amount": self.amount,
            "id": self.keyset_id,
            "secret": self.secret,
            "C": self.C,
        }
        if self.witness is not None:
            out["witness"] = self.witness
        return out


@dataclass(frozen=True, slots=True)
class Token:
    mint: str  # without trailing slashes
    unit: str
    proofs: tuple[Proof, ...]
    memo: str | None = None

    @property
    def amount(self) -> int:
        return sum(p.amount for p in self.proofs)


def normalize_mint_url(url: str) -> str:
    return url.strip().rstrip("/")


def _b64url_decode(text: str) -> bytes:
    cleaned = text.strip().replace("+", "-").replace("/", "_").rstrip("=")
    try:
        return base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError) as exc:
        raise TokenError("the token is not base64url") from exc


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _text(value: Any, what: str, limit: int) -> str:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise TokenError(f"{what} must be a non-empty string of at most {limit} characters")
    return value


def _bytes_hex(value: Any, what: str, sizes: tuple[int, ...]) -> str:
    if not isinstance(value, bytes) or len(value) not in sizes:
        raise TokenError(f"{what} must be {' or '.join(map(str, sizes))} bytes")
    return value.hex()


def decode_token(text: str) -> Token:
    """A cashuB token, checked for shape (not for value: only the mint can say it is good)."""
    text = text.strip().removeprefix("cashu:")
    if len(text) > MAX_TOKEN_CHARS:
        raise TokenError(f"the token is longer than {MAX_TOKEN_CHARS} characters")
    if not text.startswith(TOKEN_PREFIX):
        raise TokenError("send a V4 token: 'cashuB' followed by base64url")
    raw = _b64url_decode(text[len(TOKEN_PREFIX) :])
    try:
        obj = optional.cbor2().loads(raw)
    except Exception as exc:  # cbor2 raises several kinds on malformed input
        raise TokenError("the token is not valid CBOR") from exc
    if not isinstance(obj, dict):
        raise TokenError("the token is not a CBOR map")
    mint = normalize_mint_url(_text(obj.get("m"), "the mint URL (m)", MAX_URL_CHARS))
    unit = _text(obj.get("u"), "the unit (u)", 16)
    memo = obj.get("d")
    groups = obj.get("t")
    if not isinstance(groups, list) or not groups or len(groups) > MAX_PROOFS:
        raise TokenError("the token holds no proofs (t)")
    proofs: list[Proof] = []
    for group in groups:
        if not isinstance(group, dict):
            raise TokenError("a keyset entry (t[]) is not a map")
        keyset_id = _bytes_hex(group.get("i"), "a keyset id (i)", (8, 33))
        items = group.get("p")
        if not isinstance(items, list) or not items:
            raise TokenError("a keyset entry holds no proofs (p)")
        for item in items:
            if len(proofs) >= MAX_PROOFS:
                raise TokenError(f"the token holds more than {MAX_PROOFS} proofs")
            if not isinstance(item, dict):
                raise TokenError("a proof is not a map")
            amount = item.get("a")
            if isinstance(amount, bool) or not isinstance(amount, int):
                raise TokenError("a proof's amount (a) must be a whole number")
            if not 0 < amount <= MAX_AMOUNT:
                raise TokenError("a proof's amount (a) is out of range")
            witness = item.get("w")
            proofs.append(
                Proof(
                    amount=amount,
                    keyset_id=keyset_id,
                    secret=_text(item.get("s"), "a proof's secret (s)", MAX_SECRET_CHARS),
                    C=_bytes_hex(item.get("c"), "a proof's signature (c)", (33,)),
                    witness=_text(witness, "a witness (w)", 4096) if witness is not None else None,
                )
            )
    return Token(mint, unit, tuple(proofs), memo if isinstance(memo, str) else None)


def encode_token(token: Token) -> str:
    """cashuB for proofs of one mint (farebox's change), grouped by keyset, full ids."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for proof in token.proofs:
        groups.setdefault(proof.keyset_id, []).append(
            {"a": proof.amount, "s": proof.secret, "c": bytes.fromhex(proof.C)}
        )
    obj: dict[str, Any] = {
        "t": [{"i": bytes.fromhex(kid), "p": items} for kid, items in groups.items()],
        "m": token.mint,
        "u": token.unit,
    }
    if token.memo:
        obj["d"] = token.memo
    return TOKEN_PREFIX + _b64url(optional.cbor2().dumps(obj))


def encode_payment_request(amount: int, unit: str, mints: list[str], description: str) -> str:
    """NUT-18 `creqA…` with no transport: NUT-24's in-band payment (the X-Cashu header)."""
    obj = {"a": amount, "u": unit, "m": list(mints), "d": description[:200]}
    return "creqA" + _b64url(optional.cbor2().dumps(obj))
