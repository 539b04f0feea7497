"""Helpers shared by the simulator tests (imported by module name; tests/sim is on sys.path)."""

from openai import AsyncOpenAI

PROMPT = "Say hello to the world"


def openai_client(base_url: str, **options: object) -> AsyncOpenAI:
    """An SDK client with no retries and a short timeout unless told otherwise."""
    settings: dict[str, object] = {"api_key": "sk-test", "max_retries": 0, "timeout": 10.0}
    settings.update(options)
    return AsyncOpenAI(base_url=base_url, **settings)  # type: ignore[arg-type]


def user(text: str = PROMPT) -> list[dict[str, object]]:
    """A one-message conversation."""
    return [{"role": "user", "content": text}]


def cycled(words: str, n: int) -> str:
    """What the sim answers for single-token words: the words cycled, n of them."""
    parts = words.split()
    return " ".join(parts[i % len(parts)] for i in range(n))
