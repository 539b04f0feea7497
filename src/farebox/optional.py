"""Heavy libraries that only some requests or settings need, imported when one first does.

The serving process starts without them: PyAV (FFmpeg; about 16 MB resident) measures uploaded
audio and finished videos, Pillow checks input images, nostr-sdk (a Rust library; about 9 MB)
speaks to customers' NWC wallets; python-bolt11 (with bitstring; about 5 MB) and pymacaroons
serve pay per request with a Lightning backend, cbor2 and coincurve serve Cashu, Jinja2 and
segno the dashboard's pages, pyhpke the ends of EHBP, cryptography's Fernet (about 7 MB, most of
it the Rust library's pages) the API keys kept encrypted, which only creating or showing a key
opens. A gateway whose customers never send
audio never carries FFmpeg. What a setting turns on (a Lightning backend for pay per request,
Cashu mints) is imported when the service is built, before any request; what a request needs
(a decoder, a dashboard page) waits for its import once (tens of milliseconds). Chat, the hot
path, needs none of them. After that, each call is a dictionary lookup in `sys.modules`.
"""

from __future__ import annotations

import importlib
from types import ModuleType


def av() -> ModuleType:
    """PyAV (FFmpeg)."""
    return importlib.import_module("av")


def pil_image() -> ModuleType:
    """Pillow's `PIL.Image`."""
    return importlib.import_module("PIL.Image")


def nostr_sdk() -> ModuleType:
    """nostr-sdk's Python bindings."""
    return importlib.import_module("nostr_sdk")


def jinja2() -> ModuleType:
    """Jinja2, for the dashboard's pages (the first page rendered loads it)."""
    return importlib.import_module("jinja2")


def segno() -> ModuleType:
    """segno, for the QR code of a top-up invoice shown on the dashboard."""
    return importlib.import_module("segno")


def pymacaroons() -> ModuleType:
    """pymacaroons (with PyNaCl), for L402 credentials (pay per request: loaded when it is
    built with a Lightning backend)."""
    return importlib.import_module("pymacaroons")


def pyhpke() -> ModuleType:
    """pyhpke, for sealing and opening EHBP requests at the ends (private/ehbp.py)."""
    return importlib.import_module("pyhpke")


def cbor2() -> ModuleType:
    """cbor2, for Cashu tokens and payment requests (loaded when trusted mints are set)."""
    return importlib.import_module("cbor2")


def coincurve() -> ModuleType:
    """coincurve (secp256k1), for Cashu's blind signatures and the dev wallet's invoices."""
    return importlib.import_module("coincurve")


def bolt11() -> ModuleType:
    """python-bolt11 (`decode`, `exceptions.Bolt11Exception`, ...)."""
    return importlib.import_module("bolt11")


def fernet() -> ModuleType:
    """cryptography's `cryptography.fernet` (`Fernet`, `InvalidToken`), for API keys at rest."""
    return importlib.import_module("cryptography.fernet")


def ed25519() -> ModuleType:
    """cryptography's Ed25519 keys, for enclaves' attestation bundles (private/attestation.py)."""
    return importlib.import_module("cryptography.hazmat.primitives.asymmetric.ed25519")


def crypto_exceptions() -> ModuleType:
    """`cryptography.exceptions` (`InvalidSignature`, `InvalidTag`)."""
    return importlib.import_module("cryptography.exceptions")
