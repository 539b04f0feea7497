"""The litellm cell of bench/run.py: LiteLLM's proxy in a virtualenv of its own, measured in
the same run as farebox and lean_proxy (`--cells …,litellm --litellm PATH`)."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from load import MODEL, Processes, Target, wait_port

LITELLM_KEY = "sk-bench-litellm"


@contextlib.contextmanager
def litellm_target(
    args: argparse.Namespace, procs: Processes, tmp: Path, port: int, upstream_port: int
) -> Iterator[Target]:
    """LiteLLM's proxy (no database: it meters nothing), one worker, core 1, routing the bench
    model to the fake upstream as an OpenAI-compatible provider."""
    if not args.litellm:
        raise RuntimeError("the litellm cell needs --litellm PATH (the `litellm` CLI of its venv)")
    config = tmp / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{MODEL}\n"
        f"      api_base: http://127.0.0.1:{upstream_port}/v1\n"
        "      api_key: sk-fake\n"
        "general_settings:\n"
        f"  master_key: {LITELLM_KEY}\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
    )
    env = {**os.environ, "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False"}
    command = [
        "taskset", "-c", "1", args.litellm, "--config", str(config),
        "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1",
    ]  # fmt: skip
    proc = procs.start("litellm", command, env)
    try:
        try:
            wait_port(port, proc, timeout=120)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n--- litellm log:\n{procs.tail('litellm', 25)}") from None
        yield Target("litellm", f"http://127.0.0.1:{port}/v1/chat/completions", LITELLM_KEY, proc)
    finally:
        procs.stop(proc, grace=15.0)
