"""EHBP clients written elsewhere, through the gateway to the simulated enclave.

PyPI `tinfoil-ehbp` 0.4.1 (as an httpx transport under the `openai` SDK) follows the current
SPEC.md: chunked sealed bodies, and a non-2xx answer without a response nonce passed through as
an unauthenticated error. npm `ehbp` 0.1.7 is older: one frame with a Content-Length, and it
throws on any answer without a nonce, the gateway's own refusals included; the plaintext
preflight is how such a client learns why.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, NoReturn

import ehbp
import httpx
import pytest
from openai import APIStatusError, OpenAI

from private_support import ENCLAVE_MODEL, IN_NANOS, OUT_NANOS, PRIVATE_MODEL
from support import NANOS, Gateway, missing_tool, wait_until

NPM_EHBP_VERSION = "0.1.7"
REPO = Path(__file__).resolve().parents[2]


def _spent(gw: Gateway, credit_id: str) -> int:
    # A stream's settlement is queued as its last bytes go out: give the ledger its tick.
    assert wait_until(lambda: gw.nanos(credit_id)[1] == 0)
    balance, _reserved = gw.nanos(credit_id)
    return NANOS - balance


def _sdk(gw: Gateway, api_key: str) -> OpenAI:
    keys = httpx.get(gw.url + "/.well-known/hpke-keys").content
    transport = ehbp.EHBPTransport(ehbp.ServerIdentity.unmarshal_public_config(keys))
    return OpenAI(
        base_url=gw.url + "/private/v1",
        api_key=api_key,
        http_client=httpx.Client(transport=transport, timeout=30),
        default_headers={"X-Private-Model": PRIVATE_MODEL},
        max_retries=0,
    )


def test_tinfoil_ehbp_under_the_openai_sdk_is_relayed_and_billed_by_usage(
    private_gateway: Gateway,
) -> None:
    gw = private_gateway
    credit_id, api_key = gw.create_account(1)
    client = _sdk(gw, api_key)
    reply = client.chat.completions.create(
        model=ENCLAVE_MODEL, messages=[{"role": "user", "content": "sealed by tinfoil"}]
    )
    chunks = list(
        client.chat.completions.create(
            model=ENCLAVE_MODEL,
            messages=[{"role": "user", "content": "streamed by tinfoil"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert reply.choices[0].message.content.startswith("sealed by tinfoil")
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).startswith(
        "streamed by tinfoil"
    )
    usages = [reply.usage, chunks[-1].usage]
    expected = sum(
        u.prompt_tokens * IN_NANOS + u.completion_tokens * OUT_NANOS for u in usages if u
    )
    assert expected > 0
    assert _spent(gw, credit_id) == expected == gw.history_total_nanos(credit_id)
    assert gw.check().problems == []


def test_tinfoil_ehbp_reads_the_gateways_refusal_as_an_unauthenticated_error(
    private_gateway: Gateway,
) -> None:
    gw = private_gateway
    credit_id, api_key = gw.create_account(0)
    with pytest.raises(APIStatusError) as refused:
        _sdk(gw, api_key).chat.completions.create(
            model=ENCLAVE_MODEL, messages=[{"role": "user", "content": "no money"}]
        )
    assert refused.value.status_code == 402
    assert "ehbp-response-nonce" not in refused.value.response.headers
    assert gw.nanos(credit_id) == (0, 0)


# --- npm ehbp 0.1.7


def _install_dir() -> Path:
    return Path(os.environ.get("FAREBOX_EHBP_NPM_DIR") or REPO / ".cache" / "ehbp-npm")


def _unavailable(reason: str) -> NoReturn:
    missing_tool(f"npm ehbp {NPM_EHBP_VERSION} unavailable: {reason}")


@pytest.fixture(scope="session")
def ehbp_npm() -> Path:
    """`.ci/run` installs npm ehbp into .cache/ehbp-npm; a test run never downloads it."""
    folder = _install_dir()
    package = folder / "node_modules" / "ehbp" / "package.json"
    if shutil.which("node") is None:
        _unavailable("node is not installed")
    installed = package.exists() and json.loads(package.read_text())["version"] == NPM_EHBP_VERSION
    if not installed:
        _unavailable(
            f"not installed in {folder}: .ci/run installs it "
            f"(npm install --prefix {folder} ehbp@{NPM_EHBP_VERSION})"
        )
    return folder


CLIENT_JS = """
import { createTransport } from "ehbp";
const [gateway, apiKey, model, enclaveModel, stream] = process.argv.slice(2);
const transport = await createTransport(gateway);
const out = {};
try {
  const response = await transport.post(
    gateway + "/private/v1/chat/completions",
    JSON.stringify({ model: enclaveModel, stream: stream === "stream",
                     stream_options: { include_usage: true },
                     messages: [{ role: "user", content: "hello from npm ehbp" }] }),
    { headers: { "Authorization": "Bearer " + apiKey, "X-Private-Model": model,
                 "Content-Type": "application/json" } });
  out.status = response.status;
  out.body = await response.text();
} catch (error) {
  out.error = error.name + ": " + error.message;
}
console.log(JSON.stringify(out));
"""


def _node(folder: Path, *args: str) -> dict[str, Any]:
    script = folder / "client.mjs"
    script.write_text(CLIENT_JS)
    done = subprocess.run(
        ["node", str(script), *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_npm_ehbp_0_1_7_is_relayed_and_billed_by_usage(
    private_gateway: Gateway, ehbp_npm: Path
) -> None:
    gw = private_gateway
    credit_id, api_key = gw.create_account(1)
    whole = _node(ehbp_npm, gw.url, api_key, PRIVATE_MODEL, ENCLAVE_MODEL, "whole")
    streamed = _node(ehbp_npm, gw.url, api_key, PRIVATE_MODEL, ENCLAVE_MODEL, "stream")
    assert whole.get("status") == 200, whole
    assert streamed.get("status") == 200, streamed
    answer = json.loads(whole["body"])
    assert answer["choices"][0]["message"]["content"].startswith("hello from npm ehbp")
    events = [
        json.loads(line[6:]) for line in streamed["body"].splitlines() if line.startswith("data: {")
    ]
    usages = [answer["usage"], events[-1]["usage"]]
    expected = sum(
        u["prompt_tokens"] * IN_NANOS + u["completion_tokens"] * OUT_NANOS for u in usages
    )
    assert _spent(gw, credit_id) == expected == gw.history_total_nanos(credit_id)


def test_npm_ehbp_0_1_7_cannot_read_a_refusal_but_the_preflight_says_why(
    private_gateway: Gateway, ehbp_npm: Path
) -> None:
    gw = private_gateway
    credit_id, api_key = gw.create_account(0)
    refused = _node(ehbp_npm, gw.url, api_key, PRIVATE_MODEL, ENCLAVE_MODEL, "whole")
    assert "Ehbp-Response-Nonce" in refused.get("error", ""), refused  # 0.1.7 throws
    why = httpx.get(
        gw.url + "/private/v1/preflight",
        headers={"Authorization": f"Bearer {api_key}", "X-Private-Model": PRIVATE_MODEL},
    )
    assert why.status_code == 402 and why.json()["error"]["code"] == "insufficient_funds"
    assert gw.nanos(credit_id) == (0, 0)
