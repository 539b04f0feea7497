"""Cashu's cryptography and wire formats without a mint: NUT-00's hash_to_curve vectors, blind
signatures that unblind to k·Y, the spec's cashuB example, bounded decoding of hostile tokens,
and change-making denominations."""

from __future__ import annotations

import base64

import cbor2
import pytest
from coincurve import PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from farebox.cashu.crypto import blind, hash_to_curve
from farebox.cashu.denominations import change_making_split, pick
from farebox.cashu.tokens import (
    MAX_PROOFS,
    Proof,
    Token,
    TokenError,
    decode_token,
    encode_payment_request,
    encode_token,
)

# NUT-00's example V4 token (two keysets with short ids, three proofs).
SPEC_TOKEN = (
    "cashuBo2F0gqJhaUgA_9SLj17PgGFwgaNhYQFhc3hAYWNjMTI0MzVlN2I4NDg0YzNjZjE4NTAxNDkyMThhZjkwZjcx"
    "NmE1MmJmNGE1ZWQzNDdlNDhlY2MxM2Y3NzM4OGFjWCECRFODGd5IXVW-07KaZCvuWHk3WrnnpiDhHki6SCQh88-iYWlI"
    "AK0mjE0fWCZhcIKjYWECYXN4QDEzMjNkM2Q0NzA3YTU4YWQyZTIzYWRhNGU5ZjFmNDlmNWE1YjRhYzdiNzA4ZWIwZDYx"
    "ZjczOGY0ODMwN2U4ZWVhY1ghAjRWqhENhLSsdHrr2Cw7AFrKUL9Ffr1XN6RBT6w659lNo2FhAWFzeEA1NmJjYmNiYjdj"
    "YzY0MDZiM2ZhNWQ1N2QyMTc0ZjRlZmY4YjQ0MDJiMTc2OTI2ZDNhNTdkM2MzZGNiYjU5ZDU3YWNYIQJzEpxXGeWZN5qX"
    "SmJjY8MzxWyvwObQGr5G1YCCgHicY2FtdWh0dHA6Ly9sb2NhbGhvc3Q6MzMzOGF1Y3NhdA"
)


def test_hash_to_curve_matches_the_nut00_vectors() -> None:
    vectors = {
        "00" * 32: "024cce997d3b518f739663b757deaec95bcd9473c30a14ac2fd04023a739d1a725",
        "00" * 31 + "01": "022e7158e11c9506f1aa4248bf531298daa7febd6194f003edcd9b93ade6253acf",
        "00" * 31 + "02": "026cdbe15362df59cd1dd3c9c11de8aedac2106eca69236ecd9fbe117af897be4f",
    }
    for message, point in vectors.items():
        assert hash_to_curve(bytes.fromhex(message)).format().hex() == point


def test_a_blind_signature_unblinds_to_k_times_the_secrets_point() -> None:
    k = PrivateKey()  # plays the mint: C_ = k * B_
    out = blind(8, "00ad268c4d1f5826")
    signed = k.public_key.__class__(bytes.fromhex(out.B_)).multiply(k.secret)
    c = out.unblind(signed.format().hex(), k.public_key.format().hex())
    assert c == hash_to_curve(out.secret.encode()).multiply(k.secret).format().hex()
    assert len(out.secret) == 64 and blind(8, "00ad268c4d1f5826").secret != out.secret


def test_the_spec_token_decodes_and_reencodes() -> None:
    token = decode_token(SPEC_TOKEN)
    assert (token.mint, token.unit, token.amount) == ("http://localhost:3338", "sat", 4)
    assert [p.keyset_id for p in token.proofs] == [
        "00ffd48b8f5ecf80",
        "00ad268c4d1f5826",
        "00ad268c4d1f5826",
    ]
    assert decode_token(encode_token(token)) == token


def _token(obj: object) -> str:
    return "cashuB" + base64.urlsafe_b64encode(cbor2.dumps(obj)).decode().rstrip("=")


PROOF = {"a": 1, "s": "ab" * 32, "c": b"\x02" * 33}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "cashuA" + "e30",  # a V3 token
        "cashuB!!!",
        "cashuB" + base64.urlsafe_b64encode(b"\xff\xff").decode(),
        _token([1, 2]),
        _token({"m": "http://m", "u": "sat"}),
        _token({"m": "http://m", "u": "sat", "t": [{"i": b"\x00" * 8, "p": []}]}),
        _token({"m": "http://m", "u": "sat", "t": [{"i": b"\x00" * 7, "p": [PROOF]}]}),
        _token({"m": "", "u": "sat", "t": [{"i": b"\x00" * 8, "p": [PROOF]}]}),
        _token({"m": "http://m", "u": "sat", "t": [{"i": b"\x00" * 8, "p": [{**PROOF, "a": 0}]}]}),
        _token(
            {"m": "http://m", "u": "sat", "t": [{"i": b"\x00" * 8, "p": [{**PROOF, "a": 1.5}]}]}
        ),
        _token(
            {"m": "http://m", "u": "sat", "t": [{"i": b"\x00" * 8, "p": [{**PROOF, "a": True}]}]}
        ),
        _token(
            {"m": "http://m", "u": "sat", "t": [{"i": b"\x00" * 8, "p": [{**PROOF, "a": 2**80}]}]}
        ),
        _token(
            {"m": "http://m", "u": "sat", "t": [{"i": b"\x00" * 8, "p": [{**PROOF, "c": b"x"}]}]}
        ),
        _token(
            {
                "m": "http://m",
                "u": "sat",
                "t": [{"i": b"\x00" * 8, "p": [PROOF] * (MAX_PROOFS + 1)}],
            }
        ),
        "cashuB" + "A" * 20_000,
    ],
)
def test_malformed_tokens_are_refused_with_a_reason(text: str) -> None:
    with pytest.raises(TokenError):
        decode_token(text)


def test_the_payment_request_is_nut18_cbor() -> None:
    creq = encode_payment_request(21, "sat", ["http://127.0.0.1:3338"], "an image")
    assert creq.startswith("creqA")
    raw = base64.urlsafe_b64decode(creq[5:] + "=" * (-len(creq[5:]) % 4))
    assert cbor2.loads(raw) == {
        "a": 21,
        "u": "sat",
        "m": ["http://127.0.0.1:3338"],
        "d": "an image",
    }


@given(st.integers(min_value=1, max_value=100_000), st.data())
def test_any_change_can_be_taken_from_the_outputs(amount: int, data: st.DataObject) -> None:
    parts = change_making_split(amount)
    assert sum(parts) == amount and all(p & (p - 1) == 0 for p in parts)
    assert len(parts) <= 2 * amount.bit_length()
    target = data.draw(st.integers(min_value=0, max_value=amount))
    chosen = pick(parts, target)
    assert chosen is not None and sum(parts[i] for i in chosen) == target
    assert len(set(chosen)) == len(chosen)


def test_change_proofs_round_trip_through_a_token() -> None:
    proofs = tuple(Proof(a, "01" + "ab" * 32, f"{a:064x}", "02" + "cd" * 32) for a in (1, 4))
    token = Token("http://127.0.0.1:3338", "sat", proofs)
    assert decode_token(encode_token(token)) == token
