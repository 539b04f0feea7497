"""A real egress proxy (Debian's tinyproxy) and a test certificate authority for TLS upstreams.

tinyproxy is installed by .ci/run; without it the tests skip (fail under CI=true). Each proxy is
started on a free port with a generated config and logs every request line (CONNECT host:port
for a tunnel, the absolute URL for plain http) to a file the tests read.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from support import free_port


def require_tinyproxy() -> str:
    path = shutil.which("tinyproxy")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(
                "tinyproxy is not installed; .ci/run installs it (apt-get install tinyproxy)"
            )
        pytest.skip("tinyproxy is not installed (apt-get install -y tinyproxy)")
    return path


@dataclass
class TinyProxy:
    url: str
    log: Path

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def requests(self) -> list[str]:
        """The request lines it received ("CONNECT host:port HTTP/1.1", "POST http://...")."""
        return [
            line.split("): ", 1)[1] for line in self.lines() if "Request (file descriptor" in line
        ]


@contextmanager
def running_tinyproxy(tmp: Path, basic_auth: tuple[str, str] | None = None) -> Iterator[TinyProxy]:
    binary = require_tinyproxy()
    port = free_port()
    log = tmp / "tinyproxy.log"
    lines = [
        f"Port {port}",
        "Listen 127.0.0.1",
        "Timeout 60",
        f'LogFile "{log}"',
        "LogLevel Info",
        "MaxClients 100",
        "Allow 127.0.0.1",
        "DisableViaHeader Yes",
        # no ConnectPort line: CONNECT to any port (the upstreams here are on ephemeral ports)
    ]
    if basic_auth is not None:
        lines.append(f"BasicAuth {basic_auth[0]} {basic_auth[1]}")
    conf = tmp / "tinyproxy.conf"
    conf.write_text("\n".join(lines) + "\n")
    process = subprocess.Popen(
        [binary, "-d", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"tinyproxy did not start: {log.read_text()}") from None
                time.sleep(0.05)
        yield TinyProxy(f"http://127.0.0.1:{port}", log)
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class LocalCA:
    """A certificate authority made for one test, and a server certificate for localhost."""

    ca_file: Path

    server_context: ssl.SSLContext


def make_ca(tmp: Path) -> LocalCA:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "farebox test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = tmp / "test-ca.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file = tmp / "server.pem"
    cert_file.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file)
    return LocalCA(ca_file, context)


ADMIN = "egress-admin-token"


@dataclass
class ServedGateway:
    """A `farebox serve` process (its own environment: proxies and SSL_CERT_FILE as an operator
    sets them before the process starts)."""

    url: str
    env: dict[str, str]
    log: Path

    def create_account(self, usd: str = "1") -> tuple[str, str]:
        with httpx.Client(base_url=self.url, timeout=30, trust_env=False) as c:
            r = c.post("/accounts/create")
            assert r.status_code == 201, r.text
            data = r.json()
            g = c.post(
                "/admin/credits",
                json={"credit_id": data["credit_id"], "amount_usd": usd},
                headers={"Authorization": f"Bearer {ADMIN}"},
            )
            assert g.status_code == 200, g.text
        return data["credit_id"], data["api_key"]

    def balance(self, credit_id: str) -> dict[str, Any]:
        with httpx.Client(base_url=self.url, timeout=30, trust_env=False) as c:
            r = c.post("/credits/balance", json={"credit_id": credit_id})
            assert r.status_code == 200, r.text
            return dict(r.json())

    def ledger_check(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "farebox", "ledger", "check"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )


@contextmanager
def served_gateway(
    tmp: Path, catalog: dict[str, Any], env: Mapping[str, str]
) -> Iterator[ServedGateway]:
    """`farebox serve` on SQLite with `catalog`, the proxy variables in `env` and nothing else
    of the test's own proxy settings."""
    catalog_path = tmp / "catalog.json"
    catalog_path.write_text(json.dumps({"replace_defaults": True, **catalog}))
    clean = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    full = {
        **clean,
        "FAREBOX_DATABASE_URL": f"sqlite:///{tmp / 'farebox.db'}",
        "FAREBOX_CATALOG": str(catalog_path),
        "FAREBOX_ADMIN_TOKEN": ADMIN,
        **env,
    }
    port = free_port()
    log = tmp / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "farebox", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=full,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise AssertionError(f"farebox serve exited:\n{log.read_text()[-4000:]}")
            try:
                if httpx.get(url + "/healthz", timeout=1, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"farebox serve did not start:\n{log.read_text()[-4000:]}")
            time.sleep(0.1)
        yield ServedGateway(url, full, log)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
