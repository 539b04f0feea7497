"""A real LNbits (FakeWallet funding source) for the test suite, in its own virtualenv.

LNbits pins pydantic v1 and old SQLAlchemy, so it cannot share farebox's environment: `.ci/run`
creates `.lnbits-venv` (`pip install lnbits==1.6.2 "bitstring<5"`), and tests find it there or
at $FAREBOX_LNBITS_VENV. Outside CI a missing venv skips these tests with the reason; under
CI=true it fails them. One LNbits serves the whole session (cold start is 5-9 s).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from support import free_port, missing_tool

REPO = Path(__file__).resolve().parents[2]


def lnbits_python() -> Path | None:
    venv = Path(os.environ.get("FAREBOX_LNBITS_VENV") or REPO / ".lnbits-venv")
    python = venv / "bin" / "python"
    return python if python.exists() else None


def require_lnbits() -> Path:
    python = lnbits_python()
    if python is None:
        reason = (
            "LNbits is not installed: run the LNbits block of .ci/run (creates .lnbits-venv) "
            "or set FAREBOX_LNBITS_VENV"
        )
        missing_tool(reason)
    return python


@dataclass
class LNbitsWallet:
    id: str
    adminkey: str
    inkey: str


@dataclass
class LNbitsServer:
    url: str
    token: str  # the super user's bearer token

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def create_wallet(self, name: str) -> LNbitsWallet:
        with self.client() as c:
            r = c.post("/api/v1/account", json={"name": name})
            r.raise_for_status()
            data = r.json()
        return LNbitsWallet(data["id"], data["adminkey"], data["inkey"])

    def fund(self, wallet: LNbitsWallet, sats: int) -> None:
        with self.client() as c:
            r = c.put(
                "/users/api/v1/balance",
                json={"id": wallet.id, "amount": sats},
                headers={"Authorization": f"Bearer {self.token}"},
            )
            r.raise_for_status()

    def pay(self, wallet: LNbitsWallet, bolt11: str) -> dict[str, Any]:
        with self.client() as c:
            r = c.post(
                "/api/v1/payments",
                json={"out": True, "bolt11": bolt11},
                headers={"X-Api-Key": wallet.adminkey},
            )
            r.raise_for_status()
            return dict(r.json())

    def balance_msat(self, wallet: LNbitsWallet) -> int:
        with self.client() as c:
            r = c.get("/api/v1/wallet", headers={"X-Api-Key": wallet.inkey})
            r.raise_for_status()
            return int(r.json()["balance"])


@contextmanager
def running_lnbits(python: Path) -> Iterator[LNbitsServer]:
    site = subprocess.run(
        [
            str(python),
            "-c",
            'import sysconfig; print(sysconfig.get_paths()["purelib"])',
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    data = tempfile.mkdtemp(prefix="farebox-lnbits-")
    port = free_port()
    env = {
        **os.environ,
        "LNBITS_BACKEND_WALLET_CLASS": "FakeWallet",
        "LNBITS_DATA_FOLDER": data,
        "LNBITS_EXTENSIONS_DEACTIVATE_ALL": "true",
        "AUTH_HTTPS_ONLY": "false",
        "LNBITS_RATE_LIMIT_NO": "100000",
        "LNBITS_CALLBACK_URL_RULES": '["https?://.*"]',
        "LNBITS_CALLBACK_ALLOW_PRIVATE_IPS": "true",
        "HOST": "127.0.0.1",
        "PORT": str(port),
    }
    log = open(Path(data) / "lnbits.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [
            str(python),
            "-m",
            "uvicorn",
            "lnbits.__main__:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=site,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    "LNbits exited at start:\n" + (Path(data) / "lnbits.log").read_text()[-3000:]
                )
            try:
                if httpx.get(url + "/api/v1/health", timeout=2).status_code in (200, 307):
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("LNbits did not start within 90 s")
            time.sleep(0.2)
        r = httpx.put(
            url + "/api/v1/auth/first_install",
            json={"username": "admin", "password": "secret1234", "password_repeat": "secret1234"},
            timeout=30,
        )
        r.raise_for_status()
        yield LNbitsServer(url, r.json()["access_token"])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
        if not os.environ.get("FAREBOX_KEEP_LNBITS_LOG"):
            shutil.rmtree(data, ignore_errors=True)
