"""L402 (Lightning Labs; `LSAT` before it): a macaroon plus the invoice's preimage.

Challenge: `WWW-Authenticate: L402 macaroon="<std base64 v2 macaroon>", invoice="<bolt11>"` (in
that order: `l402-requests` 0.9.0 parses nothing else). The macaroon's identifier is
`uint16 0 || payment_hash || 32 random bytes`; its root key is HMAC(key derived from the
instance secret, identifier), so nothing is stored per challenge. First-party caveats bind it:

    services=<realm>:0            farebox_endpoint=/v1/images/generations
    farebox_price_nanos=40000000  farebox_sats=40          valid_until=<unix seconds>

Credential: `Authorization: L402 <macaroon>:<preimage hex>`, also `LSAT …`, `L402 token=…:…`
and `L402 macaroon="…", preimage="…"` (or `token="…"`). The macaroon may be standard or
url-safe base64. Verification: the signature chain under our root key, every caveat understood
(a holder may attenuate: an added caveat must agree with ours), and sha256(preimage) equal to
the payment hash in the identifier.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import struct
from typing import TYPE_CHECKING

from farebox import optional
from farebox.inputs import ascii_whole_number
from farebox.pay402.encoding import MAX_TOKEN_CHARS, DecodeError, b64url_decode, derive_key
from farebox.pay402.encoding import preimage_bytes as parse_preimage
from farebox.pay402.errors import CredentialRejected
from farebox.pay402.types import Claims, Invoice, Issued, Offer, Presented

if TYPE_CHECKING:
    from pymacaroons import Macaroon

NAME = "l402"
SCHEMES = ("l402", "lsat")
IDENTIFIER_VERSION = 0
IDENTIFIER_BYTES = 2 + 32 + 32
MAX_CAVEATS = 32

_PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,"]*))')


def _pair(raw: str) -> tuple[str, str]:
    """(macaroon, preimage) from the credential part of any accepted form."""
    text = raw.strip()
    if text.lower().startswith(("token=", "macaroon=")):
        params = {
            m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
            for m in _PARAM.finditer(text)
        }
        mac = params.get("macaroon") or params.get("token") or ""
        if "preimage" in params:
            return mac, params["preimage"]
        text = mac
    mac, sep, preimage = text.rpartition(":")
    if not sep or not mac:
        raise CredentialRejected(
            "malformed-credential", "An L402 credential is <macaroon>:<preimage>."
        )
    return mac, preimage


class L402Scheme:
    name = NAME
    fixed_price_only = False  # a chat token keeps what its request did not use

    def __init__(self, secret: str, realm: str) -> None:
        self._key = derive_key(secret, "l402 macaroon root")
        self.realm = realm

    def _root_key(self, identifier: bytes) -> bytes:
        return hmac.new(self._key, identifier, hashlib.sha256).digest()

    def mint(self, offer: Offer, invoice: Invoice) -> str:
        """A macaroon for this invoice, standard base64 of the v2 binary form (aperture's)."""
        identifier = (
            struct.pack(">H", IDENTIFIER_VERSION)
            + bytes.fromhex(invoice.payment_hash)
            + os.urandom(32)
        )
        macaroons = optional.pymacaroons()
        mac = macaroons.Macaroon(
            location=self.realm,
            identifier=identifier,
            key=self._root_key(identifier),
            version=macaroons.MACAROON_V2,
        )
        for caveat in (
            f"services={self.realm}:0",
            f"farebox_endpoint={offer.endpoint}",
            f"farebox_price_nanos={offer.price_nanos}",
            f"farebox_sats={invoice.sats}",
            f"valid_until={int(invoice.expires_at)}",
        ):
            mac.add_first_party_caveat(caveat)
        return base64.b64encode(macaroons.serializers.BinarySerializer().serialize_raw(mac)).decode(
            "ascii"
        )

    def challenge(self, offer: Offer, invoice: Invoice) -> Issued:
        mac = self.mint(offer, invoice)
        return Issued(f'L402 macaroon="{mac}", invoice="{invoice.bolt11}"', {"macaroon": mac})

    def read(self, authorization: str) -> Presented | None:
        scheme, _, rest = authorization.strip().partition(" ")
        if scheme.lower() not in SCHEMES or not rest.strip():
            return None
        return Presented(NAME, rest)

    def verify(self, presented: Presented) -> Claims:
        if len(presented.raw) > MAX_TOKEN_CHARS:
            raise CredentialRejected("malformed-credential", "The L402 credential is too long.")
        mac_text, preimage_text = _pair(presented.raw)
        macaroons = optional.pymacaroons()
        try:
            preimage = parse_preimage(preimage_text)
            mac = macaroons.serializers.BinarySerializer().deserialize_raw(b64url_decode(mac_text))
        except DecodeError as exc:
            raise CredentialRejected(
                "malformed-credential", f"Bad L402 credential: {exc}."
            ) from None
        except Exception:  # pymacaroons raises many kinds on bytes it cannot read
            raise CredentialRejected(
                "malformed-credential", "The L402 macaroon cannot be decoded."
            ) from None
        identifier = bytes(mac.identifier_bytes)
        if len(identifier) != IDENTIFIER_BYTES or identifier[:2] != b"\x00\x00":
            raise CredentialRejected(
                "verification-failed", "This macaroon was not issued by this server."
            )
        caveats = self._caveats(mac)
        try:
            verifier = macaroons.Verifier()
            verifier.satisfy_general(lambda _caveat: True)  # each was checked by _caveats
            verifier.verify(mac, self._root_key(identifier))
        except Exception:
            raise CredentialRejected(
                "verification-failed",
                "The macaroon's signature does not verify: it was tampered with or issued by "
                "another server.",
            ) from None
        payment_hash = identifier[2:34]
        if not hmac.compare_digest(hashlib.sha256(preimage).digest(), payment_hash):
            raise CredentialRejected(
                "invalid-preimage", "The preimage does not match this macaroon's invoice."
            )
        return Claims(
            scheme=NAME,
            payment_id=payment_hash.hex(),
            endpoint=caveats["farebox_endpoint"],
            price_nanos=int(caveats["farebox_price_nanos"]),
            sats=int(caveats["farebox_sats"]),
            expires_at=float(caveats["valid_until"]),
        )

    def _caveats(self, mac: Macaroon) -> dict[str, str]:
        """Our caveats' values. Every caveat must be one we understand; a repeated one (a
        holder's attenuation) must agree with ours, except valid_until, where the earliest wins."""
        if mac.third_party_caveats() or len(mac.caveats) > MAX_CAVEATS:
            raise CredentialRejected(
                "verification-failed", "This macaroon carries caveats this server does not issue."
            )
        found: dict[str, str] = {}
        for caveat in mac.first_party_caveats():
            raw = caveat.caveat_id
            try:
                text = raw.decode() if isinstance(raw, bytes) else str(raw)
            except UnicodeDecodeError:
                text = ""
            key, sep, value = text.partition("=")
            key, value = key.strip(), value.strip()
            if not sep or key not in _KNOWN:
                raise CredentialRejected(
                    "verification-failed", f"Unknown macaroon caveat {key[:40]!r}."
                )
            if key == "valid_until" and key in found:
                found[key] = str(min(_number(found[key]), _number(value)))
            elif key in found and found[key] != value:
                raise CredentialRejected(
                    "verification-failed", f"The macaroon's {key} caveats disagree."
                )
            else:
                found[key] = value
        if set(found) != _KNOWN:
            raise CredentialRejected("verification-failed", "The macaroon lacks farebox's caveats.")
        if f"{self.realm}:0" not in found["services"].split(","):
            raise CredentialRejected("verification-failed", "This macaroon is for another service.")
        for key in ("farebox_price_nanos", "farebox_sats", "valid_until"):
            _number(found[key])
        if not found["farebox_endpoint"].startswith("/"):
            raise CredentialRejected("verification-failed", "The macaroon names no endpoint.")
        return found


_KNOWN = frozenset(
    {"services", "farebox_endpoint", "farebox_price_nanos", "farebox_sats", "valid_until"}
)


def _number(text: str) -> int:
    number = ascii_whole_number(text, 20)  # isdigit() accepts "²", which int() refuses
    if number is None:
        raise CredentialRejected("verification-failed", "A macaroon caveat is not a number.")
    return number
