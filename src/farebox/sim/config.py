"""Settings for one simulator instance."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MODELS: tuple[str, ...] = ("sim-chat", "sim-chat-mini")


@dataclass(frozen=True, slots=True)
class SimConfig:
    """How a simulator behaves when a request asks for nothing special.

    Every timing and fault here can be overridden per request (see `farebox.sim.faults`).
    """

    latency_ms: float = 0.0
    """Delay before the response headers."""
    ttft_ms: float = 0.0
    """Extra delay before the first token (stream) or before the body (non-stream)."""
    tokens_per_second: float = 0.0
    """Output pace; 0 sends every token at once."""
    default_output_tokens: int = 20
    """Completion length when the request sets neither a cap nor `sim.output_tokens`."""
    fault_rate: float = 0.0
    """Share of requests (0..1) answered 503 at random."""
    seed: int | None = None
    """Seed for the random faults; None seeds from the OS."""
    api_key: str | None = None
    """If set, the only bearer key accepted; otherwise any bearer key is."""
    models: tuple[str, ...] = DEFAULT_MODELS
    """Model ids listed by `GET /v1/models` (chat accepts and echoes any model id)."""

    def __post_init__(self) -> None:
        if self.latency_ms < 0 or self.ttft_ms < 0 or self.tokens_per_second < 0:
            raise ValueError("latency_ms, ttft_ms and tokens_per_second must be >= 0")
        if self.default_output_tokens < 0:
            raise ValueError("default_output_tokens must be >= 0")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError("fault_rate must be between 0 and 1")
