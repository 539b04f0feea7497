"""A real Cashu mint (nutshell 0.20.2, FakeWallet Lightning backend) and the `cashu` wallet,
both from their own virtualenv, for the Cashu tests.

The `cashu` package pins what farebox cannot share (SQLAlchemy 2.1, old marshmallow and
limits), so `.ci/run` creates `.cashu-venv` (`pip install cashu==0.20.2 "marshmallow<4"
"limits<5"`) and tests find it there or at $FAREBOX_CASHU_VENV. Without it the tests skip with
the reason; under CI=true they fail. A mint starts in ~1.5 s; the wallet runs as one process per
test wallet, spoken to in JSON lines (cashu_wallet.py).
"""

from __future__ import annotations

import json
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

from farebox.catalog.loader import catalog_from_dict

from media_support import media_catalog_dict
from support import Gateway, free_port, missing_tool

REPO = Path(__file__).resolve().parents[2]
WALLET_SCRIPT = Path(__file__).with_name("cashu_wallet.py")


def cashu_venv() -> Path | None:
    venv = Path(os.environ.get("FAREBOX_CASHU_VENV") or REPO / ".cashu-venv")
    return venv if (venv / "bin" / "mint").exists() else None


def require_cashu() -> Path:
    venv = cashu_venv()
    if venv is None:
        reason = (
            "the cashu mint and wallet are not installed: run the Cashu block of .ci/run "
            "(creates .cashu-venv) or set FAREBOX_CASHU_VENV"
        )
        missing_tool(reason)
    return venv


@dataclass
class Mint:
    url: str
    directory: Path


@contextmanager
def running_mint(venv: Path, *, input_fee_ppk: int = 0, key: str = "test-key") -> Iterator[Mint]:
    """A nutshell mint on a free loopback port with sat and usd keysets (FakeWallet: its
    Lightning invoices pay themselves), stopped with SIGTERM afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="farebox-mint-"))
    port = free_port()
    env = {
        **os.environ,
        "MINT_BACKEND_BOLT11_SAT": "FakeWallet",
        "MINT_BACKEND_BOLT11_USD": "FakeWallet",
        "MINT_DERIVATION_PATH_LIST": json.dumps(["m/0'/2'/0'"]),  # the usd keyset
        "MINT_PRIVATE_KEY": key,
        "MINT_LISTEN_HOST": "127.0.0.1",
        "MINT_LISTEN_PORT": str(port),
        "MINT_DATABASE": str(directory / "db"),
        "MINT_INPUT_FEE_PPK": str(input_fee_ppk),
        "MINT_RATE_LIMIT": "FALSE",
        "FAKEWALLET_DELAY_INCOMING_PAYMENT": "0",
        "FAKEWALLET_DELAY_OUTGOING_PAYMENT": "0",
        "CASHU_DIR": str(directory / "cashu"),
    }
    log = open(directory / "mint.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [str(venv / "bin" / "mint")],
        cwd=directory,  # it reads a .env from its working directory
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    "the mint exited:\n" + (directory / "mint.log").read_text()[-3000:]
                )
            try:
                if httpx.get(url + "/v1/keysets", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the mint did not start within 60 s")
            time.sleep(0.1)
        yield Mint(url, directory)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
        shutil.rmtree(directory, ignore_errors=True)


class Wallet:
    """The published `cashu` wallet in a process of its own (cashu_wallet.py)."""

    def __init__(self, venv: Path, mint: Mint, unit: str = "sat") -> None:
        self.mint = mint
        self.directory = Path(tempfile.mkdtemp(prefix="farebox-wallet-"))
        self.proc = subprocess.Popen(
            [str(venv / "bin" / "python"), str(WALLET_SCRIPT), mint.url, str(self.directory), unit],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "CASHU_DIR": str(self.directory)},
        )
        ready = self._read()
        assert ready.get("ready"), ready

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("the cashu wallet process exited")
            if line.startswith("{"):
                return dict(json.loads(line))

    def call(self, op: str, **args: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()
        answer = self._read()
        if "error" in answer:
            raise WalletError(str(answer["error"]))
        return answer

    def mint_sats(self, amount: int) -> int:
        return int(self.call("mint", amount=amount)["balance"])

    def send(self, amount: int) -> str:
        return str(self.call("send", amount=amount)["token"])

    def pay(self, creq: str, extra: int = 0) -> tuple[str, int]:
        """Pay a NUT-18 payment request (decoded by the library) with `extra` sats over it."""
        answer = self.call("pay", request=creq, extra=extra)
        return str(answer["token"]), int(answer["amount"])

    def receive(self, token: str) -> int:
        return int(self.call("receive", token=token)["received"])

    def balance(self) -> int:
        return int(self.call("balance")["balance"])

    def decode(self, token: str) -> dict[str, Any]:
        return self.call("decode", token=token)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        shutil.rmtree(self.directory, ignore_errors=True)


class WalletError(RuntimeError):
    pass


# $100 per 1M input tokens, $1,000 per 1M output tokens: 100 output tokens cost 100 sats at the
# dev wallet's $100,000 per BTC (1 sat = $0.001), so change shows in whole sats.
CHAT_PRICE = {"input_per_1m": "100", "output_per_1m": "1000"}


def cashu_catalog(sim_url: str) -> Any:
    catalog = media_catalog_dict(sim_url)
    chat = {
        "provider": "Test",
        "type": "chat",
        "context": 100_000,
        "max_output": 4096,
        "date_added": "2026-01-01",
        "price": CHAT_PRICE,
    }
    catalog["models"]["chat-model"] = {
        **chat,
        "all_output_visible": True,
        "routes": [{"provider": "sim", "model": "sim-chat"}],
    }
    catalog["models"]["thinking-model"] = {  # output the meter may not see: the cap is held
        **chat,
        "routes": [{"provider": "sim", "model": "sim-chat"}],
    }
    catalog["models"]["failing-chat"] = {
        **chat,
        "routes": [{"provider": "sim503", "model": "sim-chat"}],
    }
    return catalog_from_dict(catalog, env={"SIM_KEY": "sim-upstream-key"})


def post(gw: Gateway, path: str, body: Any, token: str | None = None) -> httpx.Response:
    headers = {"X-Cashu": token} if token else {}
    with gw.client() as c:
        return c.post(path, json=body, headers=headers)


def pay(wallet: Wallet, gw: Gateway, path: str, body: Any, extra: int = 0) -> tuple[str, int]:
    """The 402's X-Cashu payment request, paid by the wallet: (token, sats sent)."""
    first = post(gw, path, body)
    assert first.status_code == 402, first.text
    return wallet.pay(first.headers["x-cashu"], extra)
