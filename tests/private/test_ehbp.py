"""EHBP as SPEC.md has it, checked against tinfoil-ehbp (an implementation written elsewhere)."""

from __future__ import annotations

import struct

import ehbp as tinfoil
import pytest

from farebox.private.ehbp import (
    SEAL_FRAME_BYTES,
    EhbpError,
    FrameReader,
    KeyConfig,
    KeyConfigMismatch,
    frame,
)
from farebox.private.ehbp_seal import ResponseSealer, ServerKey, seal_request


def test_key_config_is_the_41_bytes_other_clients_parse() -> None:
    key = ServerKey.generate()
    encoded = key.config.encode()
    assert len(encoded) == 41
    identity = tinfoil.ServerIdentity.unmarshal_public_config(encoded)
    assert identity.public_key_bytes() == key.config.public_key
    assert KeyConfig.parse(identity.marshal_public_config()) == key.config


def test_a_request_sealed_by_tinfoil_ehbp_opens_and_its_answer_opens_there() -> None:
    key = ServerKey.generate()
    identity = tinfoil.ServerIdentity.unmarshal_public_config(key.config.encode())
    plaintext = b'{"messages": "' + b"x" * (SEAL_FRAME_BYTES + 100) + b'"}'  # two frames
    sealed = identity.encrypt_request_body(plaintext)
    opened, secret = key.open_request(sealed.encapsulated_key, sealed.body)
    assert opened == plaintext
    sealer = ResponseSealer(secret, sealed.encapsulated_key)
    body = sealer.seal(b"first event") + frame(b"") + sealer.seal(b"second event")
    keys = tinfoil.derive_response_keys(
        sealed.token.exported_secret, sealed.token.request_enc, sealer.nonce
    )
    assert tinfoil.FrameDecryptor(keys).push(body) == [b"first event", b"second event"]


def test_our_sealed_request_round_trips_and_binds_its_answer() -> None:
    key = ServerKey.generate()
    plaintext = b"y" * (3 * SEAL_FRAME_BYTES + 7)
    sealed = seal_request(key.config, plaintext)
    reader = FrameReader()
    assert len(reader.feed(sealed.body)) == 4
    assert reader.plaintext_bytes == len(plaintext)
    opened, secret = key.open_request(sealed.enc, sealed.body)
    assert opened == plaintext
    sealer = ResponseSealer(secret, sealed.enc)
    answer = sealer.seal(b"hello") + sealer.seal(b" world")
    opener = sealed.opener(sealer.nonce_hex)
    assert opener.feed(answer[:7]) + opener.feed(answer[7:]) == b"hello world"
    opener.finish()
    other = seal_request(key.config, plaintext)  # another request's keys open nothing
    with pytest.raises(EhbpError):
        other.opener(sealer.nonce_hex).feed(answer)


def test_a_request_sealed_to_another_key_is_a_key_mismatch() -> None:
    old, new = ServerKey.generate(), ServerKey.generate()
    sealed = seal_request(old.config, b"{}")
    with pytest.raises(KeyConfigMismatch):
        new.open_request(sealed.enc, sealed.body)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (struct.pack(">I", 10) + b"x" * 10, "shorter than its authentication tag"),
        (struct.pack(">I", 100) + b"x" * 20, "ends inside a frame"),
        (struct.pack(">I", 1 << 31), "over the limit"),
    ],
)
def test_malformed_framing_is_refused(body: bytes, problem: str) -> None:
    reader = FrameReader()
    with pytest.raises(EhbpError, match=problem):
        reader.feed(body)
        reader.finish()


def test_a_response_frame_that_was_altered_fails_authentication() -> None:
    key = ServerKey.generate()
    sealed = seal_request(key.config, b"{}")
    _, secret = key.open_request(sealed.enc, sealed.body)
    sealer = ResponseSealer(secret, sealed.enc)
    answer = bytearray(sealer.seal(b"the answer"))
    answer[-1] ^= 1
    with pytest.raises(EhbpError, match="authentication"):
        sealed.opener(sealer.nonce_hex).feed(bytes(answer))
