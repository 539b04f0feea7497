"""Blind Diffie-Hellman key exchange on secp256k1 (NUT-00), the wallet's side of it.

farebox acts as a wallet when it receives ecash: it picks fresh secrets `x`, blinds them
(`B_ = Y + rG` with `Y = hash_to_curve(x)` and a random `r`), lets the mint sign (`C_ = kB_`)
and unblinds (`C = C_ - rK`). The pair `(x, C)` is then a proof only farebox knows, which the
payer's proofs were swapped for, so the payer can no longer spend what they paid with.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from farebox import optional

if TYPE_CHECKING:
    from coincurve import PrivateKey, PublicKey

DOMAIN_SEPARATOR = b"Secp256k1_HashToCurve_Cashu_"
MAX_COUNTER = 2**16  # a point turns up within a few tries; this bound is never reached


def _public_key() -> type[PublicKey]:
    """coincurve's PublicKey (coincurve is loaded when Cashu mints are configured)."""
    cls: type[PublicKey] = optional.coincurve().PublicKey
    return cls


def hash_to_curve(message: bytes) -> PublicKey:
    """NUT-00: `PublicKey(0x02 || SHA256(SHA256(DST || x) || counter_le32))` for the first
    counter that gives a point on the curve."""
    msg_hash = hashlib.sha256(DOMAIN_SEPARATOR + message).digest()
    for counter in range(MAX_COUNTER):
        candidate = hashlib.sha256(msg_hash + counter.to_bytes(4, "little")).digest()
        try:
            return _public_key()(b"\x02" + candidate)
        except ValueError:
            continue
    raise ValueError("no curve point found for this message")  # pragma: no cover


def negate(point: PublicKey) -> PublicKey:
    """-P: the same x, the other y (flip the compressed prefix 02 <-> 03)."""
    raw = point.format(compressed=True)
    return _public_key()(bytes([raw[0] ^ 0x01]) + raw[1:])


@dataclass(frozen=True, slots=True)
class Blinded:
    """One output farebox asks the mint to sign, with what it needs to unblind the signature."""

    amount: int
    keyset_id: str
    secret: str  # 64 hex characters (32 random bytes), as NUT-00 recommends
    r: bytes  # the blinding factor
    B_: str  # compressed point, hex

    def unblind(self, C_: str, mint_key: str) -> str:
        """C = C_ - rK, hex."""
        public_key = _public_key()
        r_times_k = public_key(bytes.fromhex(mint_key)).multiply(self.r)
        point = public_key.combine_keys([public_key(bytes.fromhex(C_)), negate(r_times_k)])
        return point.format(compressed=True).hex()


def blind(amount: int, keyset_id: str) -> Blinded:
    secret = secrets.token_hex(32)
    r: PrivateKey = optional.coincurve().PrivateKey()
    y = hash_to_curve(secret.encode())
    b_ = _public_key().combine_keys([y, r.public_key])
    return Blinded(amount, keyset_id, secret, r.secret, b_.format(compressed=True).hex())
