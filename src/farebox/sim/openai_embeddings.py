"""OpenAI embeddings (`POST /v1/embeddings`): deterministic unit vectors, float or base64.

A text's vector is seeded by its SHA-256, so equal texts embed equally. `dimensions` shortens
it; otherwise models named like "*large*" give 3072 dimensions and the rest 1536.
`usage.prompt_tokens` is the o200k token count of the texts (token-id inputs count their ids).
"""

from __future__ import annotations

import base64
import hashlib
import random
import struct
from typing import Any

from aiohttp import web

from farebox.sim.media_base import enter
from farebox.sim.openai_base import error_response, json_response, read_json_object

PATHS = ("/v1/embeddings", "/embeddings")
ENDPOINT = "embeddings"


def vector(text: str, dims: int) -> list[float]:
    """A unit-length vector for `text`, the same every time."""
    rng = random.Random(hashlib.sha256(text.encode()).digest())
    raw = [rng.gauss(0.0, 1.0) for _ in range(dims)]
    norm = sum(v * v for v in raw) ** 0.5 or 1.0
    return [v / norm for v in raw]


def _inputs(value: Any) -> list[str | list[int]] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(v, int) for v in value):
            return [value]
        if all(isinstance(v, str) for v in value) or all(
            isinstance(v, list) and all(isinstance(i, int) for i in v) for v in value
        ):
            return list(value)
    return None


async def embeddings(request: web.Request) -> web.StreamResponse:
    body = await read_json_object(request)
    if isinstance(body, web.Response):
        return body
    entered = await enter(request, ENDPOINT, body=body)
    if isinstance(entered, web.Response):
        return entered
    state, _faults = entered
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return error_response(400, "you must provide a model parameter", param="model")
    inputs = _inputs(body.get("input"))
    if inputs is None:
        return error_response(400, "'input' must be a string or a list of them", param="input")
    dims = body.get("dimensions") or (3072 if "large" in model else 1536)
    if not isinstance(dims, int) or dims < 1:
        return error_response(400, "dimensions must be a positive integer", param="dimensions")
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    tokens = 0
    for i, item in enumerate(inputs):
        if isinstance(item, str):
            tokens += state.tokenizer.count(item)
            vec = vector(item, dims)
        else:
            tokens += len(item)
            vec = vector(",".join(map(str, item)), dims)
        embedding: Any = (
            base64.b64encode(struct.pack(f"<{dims}f", *vec)).decode() if as_base64 else vec
        )
        data.append({"object": "embedding", "index": i, "embedding": embedding})
    return json_response(
        {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


ROUTES: tuple[web.RouteDef, ...] = tuple(web.post(path, embeddings) for path in PATHS)
