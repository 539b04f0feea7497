"""EHBP, the Encrypted HTTP Body Protocol (../shared/reference/private/ehbp-SPEC.md), both ends.

HPKE (RFC 9180, base mode) with X25519 / HKDF-SHA256 / AES-256-GCM seals a request body to the
enclave's key (info "ehbp request"); the response is sealed with AES-256-GCM under keys derived
from the request's HPKE context (OHTTP's schedule, SPEC §4.4), so only the party that sealed
the request can read the answer. Both bodies are frames: a 4-byte big-endian length, then that
many ciphertext bytes. The gateway uses only `FrameReader` (it counts frames, it cannot open
them); the private proxy seals requests and opens responses; the simulator's enclave does the
other half.
"""

from __future__ import annotations

import functools
import os
import struct
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from farebox import optional

KEYS_PATH = "/.well-known/hpke-keys"
KEYS_MEDIA_TYPE = "application/ohttp-keys"
ENCAPSULATED_KEY_HEADER = "Ehbp-Encapsulated-Key"
RESPONSE_NONCE_HEADER = "Ehbp-Response-Nonce"
PROBLEM_JSON = "application/problem+json"
KEY_CONFIG_PROBLEM = "urn:ietf:params:ehbp:error:key-config"

REQUEST_INFO = b"ehbp request"
EXPORT_LABEL = b"ehbp response"
KEM_X25519 = 0x0020
KDF_HKDF_SHA256 = 0x0001
AEAD_AES_256_GCM = 0x0002
ENC_LENGTH = 32
PUBLIC_KEY_LENGTH = 32
KEY_CONFIG_LENGTH = 41  # key_id(1) kem(2) public key(32) suites length(2) one suite(4)
RESPONSE_NONCE_LENGTH = 32  # max(Nn, Nk) for AES-256-GCM
TAG_LENGTH = 16
PREFIX_LENGTH = 4
SEAL_FRAME_BYTES = 64 * 1024  # plaintext per frame when sealing
MAX_FRAME_BYTES = 16 * 1024 * 1024  # a longer frame is refused before it is buffered


@functools.cache
def suite() -> Any:
    """The HPKE suite (pyhpke's `CipherSuite`). Only the ends seal and open requests (the
    enclave, the private proxy): the gateway's relay only reads frames, and never loads pyhpke."""
    hpke = optional.pyhpke()
    return hpke.CipherSuite.new(
        hpke.KEMId.DHKEM_X25519_HKDF_SHA256, hpke.KDFId.HKDF_SHA256, hpke.AEADId.AES256_GCM
    )


class EhbpError(Exception):
    """A malformed EHBP message (framing, header, key config): the exchange fails closed."""


class KeyConfigMismatch(EhbpError):
    """The request was not sealed to this server's key (a stale key after rotation: 422)."""


@dataclass(frozen=True, slots=True)
class KeyConfig:
    """One RFC 9458 key_config: the server's public key and its (single) suite."""

    key_id: int
    public_key: bytes

    def encode(self) -> bytes:
        return (
            struct.pack(">BH", self.key_id, KEM_X25519)
            + self.public_key
            + struct.pack(">HHH", 4, KDF_HKDF_SHA256, AEAD_AES_256_GCM)
        )

    @staticmethod
    def parse(data: bytes) -> KeyConfig:
        """The first key_config of an `application/ohttp-keys` body (SPEC §3.2)."""
        if len(data) < KEY_CONFIG_LENGTH:
            raise EhbpError(f"key config is {len(data)} bytes, expected {KEY_CONFIG_LENGTH}")
        key_id, kem = struct.unpack_from(">BH", data, 0)
        if kem != KEM_X25519:
            raise EhbpError(f"unsupported KEM 0x{kem:04x}")
        public_key = data[3 : 3 + PUBLIC_KEY_LENGTH]
        (suites_length,) = struct.unpack_from(">H", data, 35)
        if suites_length < 4 or suites_length % 4 or 37 + suites_length > len(data):
            raise EhbpError("malformed cipher suites in key config")
        kdf, aead = struct.unpack_from(">HH", data, 37)
        if (kdf, aead) != (KDF_HKDF_SHA256, AEAD_AES_256_GCM):
            raise EhbpError(f"unsupported suite KDF 0x{kdf:04x} AEAD 0x{aead:04x}")
        return KeyConfig(key_id, bytes(public_key))


class ServerKey:
    """An enclave's HPKE key pair (the private half never leaves the enclave)."""

    def __init__(self, private: X25519PrivateKey, key_id: int = 0) -> None:
        self._private = optional.pyhpke().KEMKey.from_pyca_cryptography_key(private)
        self.key_id = key_id
        self.config = KeyConfig(key_id, private.public_key().public_bytes_raw())

    @staticmethod
    def generate(key_id: int = 0) -> ServerKey:
        return ServerKey(X25519PrivateKey.generate(), key_id)

    def open_request(self, enc: bytes, body: bytes) -> tuple[bytes, bytes]:
        """The request's plaintext and the secret its response is sealed with.

        Raises KeyConfigMismatch when the first frame does not open under this key (SPEC §5.4.2:
        422), EhbpError when the framing or the encapsulated key is malformed (400).
        """
        if len(enc) != ENC_LENGTH:
            raise EhbpError("the encapsulated key must be 32 bytes")
        reader = FrameReader()
        frames = reader.feed(body)
        reader.finish()
        try:
            context = suite().create_recipient_context(enc, self._private, info=REQUEST_INFO)
        except Exception as exc:  # pyhpke raises its own errors for a bad point
            raise EhbpError("the encapsulated key is not a valid X25519 point") from exc
        plain: list[bytes] = []
        for index, frame in enumerate(frames):
            if not frame:
                continue
            try:
                plain.append(context.open(frame))
            except Exception as exc:
                if index == 0:
                    raise KeyConfigMismatch("the request is not sealed to this key") from exc
                raise EhbpError("a request frame failed authentication") from exc
        return b"".join(plain), context.export(EXPORT_LABEL, 32)


@dataclass(slots=True)
class SealedRequest:
    """A sealed request body, its encapsulated key (the header's value, as hex), and what the
    client keeps to open the response."""

    enc: bytes
    body: bytes
    secret: bytes = field(repr=False)

    @property
    def enc_hex(self) -> str:
        return self.enc.hex()

    def opener(self, nonce_hex: str) -> ResponseOpener:
        return ResponseOpener(self.secret, self.enc, parse_nonce(nonce_hex))


def seal_request(config: KeyConfig, plaintext: bytes) -> SealedRequest:
    """Seal `plaintext` to the server's key, in frames of SEAL_FRAME_BYTES."""
    public_key = X25519PublicKey.from_public_bytes(config.public_key)
    public = optional.pyhpke().KEMKey.from_pyca_cryptography_key(public_key)
    enc, context = suite().create_sender_context(public, info=REQUEST_INFO)
    parts = [
        frame(context.seal(plaintext[i : i + SEAL_FRAME_BYTES]))
        for i in range(0, len(plaintext), SEAL_FRAME_BYTES)
    ]
    return SealedRequest(enc, b"".join(parts), context.export(EXPORT_LABEL, 32))


def frame(ciphertext: bytes) -> bytes:
    return struct.pack(">I", len(ciphertext)) + ciphertext


def parse_nonce(value: str) -> bytes:
    try:
        nonce = bytes.fromhex(value.strip())
    except ValueError as exc:
        raise EhbpError("the response nonce is not hex") from exc
    if len(nonce) != RESPONSE_NONCE_LENGTH:
        raise EhbpError(f"the response nonce must be {RESPONSE_NONCE_LENGTH} bytes")
    return nonce


def _response_keys(secret: bytes, enc: bytes, nonce: bytes) -> tuple[AESGCM, bytes]:
    """SPEC §4.4.1: prk = Extract(enc ‖ nonce, secret); key, base nonce = Expand(prk, ...)."""
    mac = hmac.HMAC(enc + nonce, hashes.SHA256())
    mac.update(secret)
    prk = mac.finalize()
    key = HKDFExpand(hashes.SHA256(), 32, b"key").derive(prk)
    base = HKDFExpand(hashes.SHA256(), 12, b"nonce").derive(prk)
    return AESGCM(key), base


def _chunk_nonce(base: bytes, seq: int) -> bytes:
    return base[:4] + (int.from_bytes(base[4:], "big") ^ seq).to_bytes(8, "big")


class ResponseSealer:
    """The server's half of a response: a fresh nonce, then each write sealed as one frame."""

    def __init__(self, secret: bytes, enc: bytes) -> None:
        self.nonce = os.urandom(RESPONSE_NONCE_LENGTH)
        self._aead, self._base = _response_keys(secret, enc, self.nonce)
        self._seq = 0

    @property
    def nonce_hex(self) -> str:
        return self.nonce.hex()

    def seal(self, plaintext: bytes) -> bytes:
        sealed = self._aead.encrypt(_chunk_nonce(self._base, self._seq), plaintext, None)
        self._seq += 1
        return frame(sealed)


class ResponseOpener:
    """The client's half: feed response bytes as they arrive, get authenticated plaintext."""

    def __init__(self, secret: bytes, enc: bytes, nonce: bytes) -> None:
        self._aead, self._base = _response_keys(secret, enc, nonce)
        self._reader = FrameReader()
        self._seq = 0

    def feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        for sealed in self._reader.feed(data):
            if not sealed:
                continue
            try:
                out.append(self._aead.decrypt(_chunk_nonce(self._base, self._seq), sealed, None))
            except InvalidTag as exc:
                raise EhbpError("a response frame failed authentication") from exc
            self._seq += 1
        return b"".join(out)

    def finish(self) -> None:
        self._reader.finish()


class FrameReader:
    """Splits an EHBP body into frames as bytes arrive, without opening them.

    Counts what a relay may know without any key: frames and their sizes (SPEC §7.2).
    """

    def __init__(self, max_frame: int = MAX_FRAME_BYTES) -> None:
        self._buffer = bytearray()
        self._max_frame = max_frame
        self.frames = 0  # non-empty frames seen
        self.sealed_bytes = 0  # ciphertext bytes in them (tags included)

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        out: list[bytes] = []
        buffer = self._buffer
        offset = 0
        while len(buffer) - offset >= PREFIX_LENGTH:
            (length,) = struct.unpack_from(">I", buffer, offset)
            if length > self._max_frame:
                raise EhbpError(f"an EHBP frame of {length} bytes is over the limit")
            if length and length < TAG_LENGTH:
                raise EhbpError("an EHBP frame is shorter than its authentication tag")
            end = offset + PREFIX_LENGTH + length
            if len(buffer) < end:
                break
            out.append(bytes(buffer[offset + PREFIX_LENGTH : end]))
            if length:
                self.frames += 1
                self.sealed_bytes += length
            offset = end
        del buffer[:offset]
        return out

    @property
    def plaintext_bytes(self) -> int:
        """What the frames carry once opened: the ciphertext less one tag per frame."""
        return self.sealed_bytes - TAG_LENGTH * self.frames

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def finish(self) -> None:
        if self._buffer:
            raise EhbpError("the EHBP body ends inside a frame")
