"""The headers private requests carry in clear, and the enclave's usage report.

Tinfoil's enclaves report usage when asked with `X-Tinfoil-Request-Usage-Metrics: true`, in
`X-Tinfoil-Usage-Metrics: prompt=…,completion=…,total=…[,cached_prompt_tokens=…][,model=…]`:
a header on whole responses, an HTTP trailer on streams. The report is all the gateway learns
about a request's size besides its ciphertext length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from farebox.inputs import ascii_whole_number

PRIVATE_MODEL_HEADER = "X-Private-Model"
"""The client names the `private/<id>` model in clear; the gateway routes and prices by it."""
ENCLAVE_MODEL_HEADER = "X-Enclave-Model"
"""The gateway tells the enclave which model its route serves (the simulator refuses others)."""
USAGE_REQUEST_HEADER = "X-Tinfoil-Request-Usage-Metrics"
USAGE_HEADER = "X-Tinfoil-Usage-Metrics"

MAX_USAGE_LINE = 512
MAX_TOKENS = 1 << 40
_MODEL = re.compile(r"^[A-Za-z0-9._:/@-]{1,96}$")


@dataclass(frozen=True, slots=True)
class EnclaveUsage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    model: str | None = None


def _count(raw: str | None) -> int | None:
    value = None if raw is None else ascii_whole_number(raw, 18)  # isdigit() accepts "²"
    return value if value is not None and value <= MAX_TOKENS else None


def parse_usage(line: str | None) -> EnclaveUsage | None:
    """The report, or None when it is absent or unreadable (prompt and completion required).

    `cached_prompt_tokens` counts only as a clean integer and is clamped to the prompt (a
    malformed one must not turn into a discount).
    """
    if not line or len(line) > MAX_USAGE_LINE:
        return None
    fields: dict[str, str] = {}
    for part in line.split(","):
        name, sep, value = part.partition("=")
        if sep:
            fields[name.strip().lower()] = value.strip()
    prompt = _count(fields.get("prompt"))
    completion = _count(fields.get("completion"))
    if prompt is None or completion is None:
        return None
    cached = _count(fields.get("cached_prompt_tokens")) or 0
    model = fields.get("model")
    return EnclaveUsage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=min(cached, prompt),
        model=model if model is not None and _MODEL.match(model) else None,
    )


def usage_line(prompt: int, completion: int, model: str | None = None) -> str:
    """The report as an enclave writes it."""
    line = f"prompt={prompt},completion={completion},total={prompt + completion}"
    return line + (f",model={model}" if model else "")
