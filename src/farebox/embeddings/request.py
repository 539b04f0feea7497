"""Reading an embeddings request: model, input (text or token ids), encoding, dimensions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from farebox.billing.tokens import count_text, encoder
from farebox.catalog.model import Catalog, CatalogModel
from farebox.errors import InvalidRequest
from farebox.modalities.paid import require_type

MAX_INPUTS = 2048


@dataclass(frozen=True, slots=True)
class EmbeddingCall:
    model: CatalogModel
    inputs: list[str] | list[list[int]]
    encoding_format: str
    dimensions: int | None
    tokens: int
    """Input tokens counted with the model's tokenizer: what the hold is for."""

    def upstream_body(self, upstream_model: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": upstream_model,
            "input": self.inputs,
            "encoding_format": self.encoding_format,
        }
        if self.dimensions is not None:
            body["dimensions"] = self.dimensions
        return body


@dataclass(frozen=True, slots=True)
class EmbeddingInput:
    """What a customer asked for, already in shape (the API's wire model checks that)."""

    model: str
    inputs: list[str] | list[list[int]]
    encoding_format: str = "float"
    dimensions: int | None = None


def embedding_call(ask: EmbeddingInput, catalog: Catalog) -> EmbeddingCall:
    """Check `ask` against its model (type, dimensions, context) and count its tokens."""
    model = catalog.resolve(ask.model)
    require_type(model, "embedding", endpoint="/v1/embeddings")
    inputs = ask.inputs
    if len(inputs) > MAX_INPUTS:
        raise InvalidRequest(f"input may hold at most {MAX_INPUTS} items.", param="input")
    dimensions = ask.dimensions
    if dimensions is not None:
        if model.dimensions is None:
            raise InvalidRequest(
                f"The model {model.id!r} does not accept dimensions.", param="dimensions"
            )
        if dimensions > model.dimensions:
            raise InvalidRequest(
                f"dimensions must be at most {model.dimensions} for {model.id!r}.",
                param="dimensions",
            )
    enc = encoder(model.tokenizer)
    counts = [count_text(enc, i) if isinstance(i, str) else len(i) for i in inputs]
    for i, count in enumerate(counts):
        if count > model.context:
            raise InvalidRequest(
                f"input[{i}] is {count} tokens; {model.id!r} takes at most {model.context}.",
                param="input",
            )
    return EmbeddingCall(model, inputs, ask.encoding_format, dimensions, sum(counts))
