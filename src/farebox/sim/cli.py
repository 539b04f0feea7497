"""`farebox sim`: run the upstream simulator from the command line."""

from __future__ import annotations

from pathlib import Path

import click

from farebox.sim.config import SimConfig
from farebox.sim.enclave import attach_enclave
from farebox.sim.server import run_sim

_EPILOG = """
\b
Endpoints (OpenAI wire format, also under /sim/<faults>/):
  POST /v1/chat/completions  stream or not, tools; text = the prompt's words
  GET  /v1/models
  GET  /health   GET /sim/stats   POST /sim/reset
  GET  /sim/requests[?endpoint=messages&last=N]  the last chat request bodies received
\b
Faults, per request in the body or per base URL as a path prefix:
  {"sim": {"status": 429, "output_tokens": 5}}
  http://127.0.0.1:9000/sim/fail_first=2,latency_ms=50/v1
\b
  status=<code>         answer with that HTTP status (429: retry-after 1)
  hang_ms=<n>, timeout  send nothing for n ms / for an hour
  disconnect_after=<n>  stream n chunks, then cut the connection
  error_after=<n>       stream n chunks, then an SSE error event
  fail_first=<n>        the first n requests under a prefix fail
  output_tokens=<n>  tool_call=true  usage=false  latency_ms  ttft_ms  tps
  job_ms=<n>  job_fail=true  a queued (fal) job runs n ms / ends in failure
  report_ms=<n>         a transcription reports n ms of audio, whatever it decoded
  reasoning_tokens=<n>  a reasoning model: n hidden thinking tokens, billed in the usage,
                        never streamed; the token cap (max_tokens) bounds thinking and answer
  ignore_cap=true       the model ignores the token cap it is sent (bills beyond it)
  web_searches=<n>      searches the model runs when offered its provider's web search
                        (default 1; Anthropic's max_uses refuses the rest)
\b
OpenAI chat: web_search_options makes the answer cite pages (url_citation), as search models do.
Media endpoints: POST /v1/embeddings, /v1/images/generations, /v1/images/edits,
  /v1/audio/transcriptions, /v1/audio/speech (OpenAI); /v1/listen, /v1/speak (Deepgram);
  /v1/text-to-speech/{voice} (ElevenLabs); /fal/{model} queue (fal)
\b
Anthropic: POST /v1/messages (stream or not; tool_use, signed thinking, prompt caching,
  the web_search server tool),
  /v1/messages/count_tokens (x-api-key, anthropic-version)
Search: POST /exa/search, POST /serper/search, GET /brave/res/v1/web/search,
  GET /searxng/search?format=json

Enclave (--enclave-port): EHBP chat on its own port, for private models:
  GET /.well-known/hpke-keys, GET /attestation, POST /v1/chat/completions (sealed),
  POST /sim/enclave/rotate; sealed-body faults drop_trailer, drop_usage, stall_after=<n>
"""


@click.command(
    "sim",
    epilog=_EPILOG,
    context_settings={"show_default": True, "max_content_width": 100},
)
@click.option("--host", default="127.0.0.1", help="Address to listen on.")
@click.option("--port", default=9000, type=click.IntRange(0, 65535), help="Port (0 = any free).")
@click.option(
    "--latency-ms", default=0.0, type=click.FloatRange(min=0), help="Delay before headers."
)
@click.option(
    "--ttft-ms",
    default=0.0,
    type=click.FloatRange(min=0),
    help="Extra delay before the first token (stream) or the body (non-stream).",
)
@click.option(
    "--tokens-per-second",
    default=0.0,
    type=click.FloatRange(min=0),
    help="Output pace; 0 sends all tokens at once.",
)
@click.option(
    "--output-tokens",
    default=20,
    type=click.IntRange(min=0),
    help="Completion length when a request sets no max_tokens or sim.output_tokens.",
)
@click.option(
    "--fault-rate",
    default=0.0,
    type=click.FloatRange(0, 1),
    help="Share of requests answered 503 at random.",
)
@click.option("--seed", type=int, default=None, help="Seed for --fault-rate.")
@click.option(
    "--api-key",
    default=None,
    envvar="FAREBOX_SIM_API_KEY",
    help="Require this bearer key (default: any bearer key is accepted).",
)
@click.option(
    "--enclave-port",
    default=None,
    type=click.IntRange(0, 65535),
    help="Also run a simulated EHBP enclave on this port (0 = any free port).",
)
@click.option(
    "--enclave-policy",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the enclave's trust policy (its test root and measurement) to this file.",
)
def sim_command(
    host: str,
    port: int,
    latency_ms: float,
    ttft_ms: float,
    tokens_per_second: float,
    output_tokens: int,
    fault_rate: float,
    seed: int | None,
    api_key: str | None,
    enclave_port: int | None,
    enclave_policy: Path | None,
) -> None:
    """Run a simulated upstream AI provider on loopback, for tests, demos and benchmarks.

    It answers in OpenAI's chat format with the latency, speed and faults you set, and counts
    what it was asked (GET /sim/stats).
    """
    config = SimConfig(
        latency_ms=latency_ms,
        ttft_ms=ttft_ms,
        tokens_per_second=tokens_per_second,
        default_output_tokens=output_tokens,
        fault_rate=fault_rate,
        seed=seed,
        api_key=api_key,
    )
    setup = None
    if enclave_port is not None:
        setup = attach_enclave(config, host, enclave_port, enclave_policy)
    run_sim(config, host, port, setup)
