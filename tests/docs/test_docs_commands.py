"""Every command in the docs runs: each runnable fenced block of README.md and docs/**/*.md (see
doc_blocks.py) runs against a `farebox serve --demo` started here, and must succeed.

The blocks find the gateway and their credentials in the environment, as the docs tell readers
to set them: FAREBOX_URL and FAREBOX_ADMIN_TOKEN (the demo's), and for each block a fresh account
funded with $5 (FAREBOX_API_KEY, FAREBOX_CREDIT_ID, FAREBOX_ACCOUNT_ID), so blocks that rotate
or spend do not disturb each other. They run in the demo's folder (its farebox.db, for the
`farebox admin` commands), with `farebox` on PATH and a `.venv` link there, so both `farebox`
and `.venv/bin/farebox` work. Shell blocks run with `set -euo pipefail`, and every curl in them
reports its HTTP status on stderr: a status of 400 or more fails the block, except a 402
followed by a successful call (the pay-per-request examples start with the challenge).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from doc_blocks import SHELLS, Block, all_blocks
from support import free_port, missing_tool

pytestmark = pytest.mark.slow

VENV_BIN = Path(sys.executable).parent
BLOCK_TIMEOUT_S = 120
STATUS = re.compile(r"^FAREBOX-DOCS-HTTP (\d{3})$", re.M)
SHELL_PRELUDE = """set -euo pipefail
curl() { command curl --write-out '%{stderr}FAREBOX-DOCS-HTTP %{http_code}\\n' "$@"; }
"""


@dataclass(frozen=True)
class Demo:
    url: str
    admin_token: str
    folder: Path

    def fresh_account(self) -> dict[str, str]:
        made = httpx.post(self.url + "/accounts/create", timeout=30)
        made.raise_for_status()
        account = made.json()
        granted = httpx.post(
            self.url + "/admin/credits",
            headers={"Authorization": f"Bearer {self.admin_token}"},
            json={"account_id": account["account_id"], "amount_usd": 5},
            timeout=30,
        )
        granted.raise_for_status()
        return {
            "FAREBOX_API_KEY": account["api_key"],
            "FAREBOX_CREDIT_ID": account["credit_id"],
            "FAREBOX_ACCOUNT_ID": account["account_id"],
        }


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAREBOX_")}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    for tool in ("bash", "curl", "jq"):
        if shutil.which(tool) is None:
            missing_tool(f"the docs' examples need {tool} (apt-get install -y {tool})")
    folder = tmp_path_factory.mktemp("docs-demo")
    (folder / ".venv").symlink_to(VENV_BIN.parent)
    port = free_port()
    token = "docs-test-admin-token"
    env = {
        **_base_env(),
        "FAREBOX_ADMIN_TOKEN": token,
        "FAREBOX_SIGNUP_PER_MINUTE": "0",  # a fresh account per block
        "FAREBOX_PAY402_CHALLENGES_PER_MIN": "0",
    }
    log = (folder / "demo.log").open("w")
    proc = subprocess.Popen(
        [str(VENV_BIN / "farebox"), "serve", "--demo", "--port", str(port)],
        cwd=folder,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the demo did not start:\n" + (folder / "demo.log").read_text())
            time.sleep(0.2)
        yield Demo(url=url, admin_token=token, folder=folder)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


RUNNABLE = [block for block in all_blocks() if block.runnable]


@pytest.mark.parametrize("block", RUNNABLE, ids=[block.name for block in RUNNABLE])
def test_the_block_runs(block: Block, demo: Demo, tmp_path: Path) -> None:
    env = {
        **_base_env(),
        "FAREBOX_URL": demo.url,
        "FAREBOX_ADMIN_TOKEN": demo.admin_token,
        **demo.fresh_account(),
    }
    if block.lang in SHELLS:
        command = ["bash", "-c", SHELL_PRELUDE + block.code]
    else:
        command = [sys.executable, "-c", block.code]
    done = subprocess.run(
        command,
        cwd=demo.folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT_S,
    )
    report = f"{block.name} ({block.lang})\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    assert done.returncode == 0, report
    statuses = [int(code) for code in STATUS.findall(done.stderr)]
    assert all(code < 400 or code == 402 for code in statuses), report
    assert not statuses or statuses[-1] < 400, report  # a 402 is followed by the paid call
