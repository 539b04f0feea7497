"""Reading an embeddings request: model, input (text or token ids), encoding, dimensions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from farebox.billing.tokens import count_text, encoder
from farebox.catalog.model import Catalog, CatalogModel
from farebox.errors import InvalidRequest
from farebox.inputs import parse_json_object
from farebox.modalities.paid import require_type

MAX_INPUTS = 2048
ENCODINGS = ("float", "base64")


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


def _inputs(value: Any) -> list[str] | list[list[int]]:
    def bad() -> InvalidRequest:
        return InvalidRequest(
            "input must be a non-empty string, a list of non-empty strings, or token ids "
            "(a list of integers, or a list of such lists).",
            param="input",
        )

    if isinstance(value, str):
        if not value:
            raise bad()
        return [value]
    if not isinstance(value, list) or not value:
        raise bad()
    if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return [list(value)]
    if all(isinstance(v, str) and v for v in value):
        strings: list[str] = list(value)
        return strings
    if all(
        isinstance(v, list) and v and all(isinstance(i, int) and not isinstance(i, bool) for i in v)
        for v in value
    ):
        ids: list[list[int]] = [list(v) for v in value]
        return ids
    raise bad()


def parse_embeddings(raw: bytes, catalog: Catalog) -> EmbeddingCall:
    body = parse_json_object(raw)
    model_id = body.get("model")
    if not isinstance(model_id, str) or not model_id:
        raise InvalidRequest(
            "model is required (e.g. openai/text-embedding-3-small).", param="model"
        )
    model = catalog.resolve(model_id)
    require_type(model, "embedding", endpoint="/v1/embeddings")
    inputs = _inputs(body.get("input"))
    if len(inputs) > MAX_INPUTS:
        raise InvalidRequest(f"input may hold at most {MAX_INPUTS} items.", param="input")
    encoding_format = body.get("encoding_format") or "float"
    if encoding_format not in ENCODINGS:
        raise InvalidRequest(
            "encoding_format must be 'float' or 'base64'.", param="encoding_format"
        )
    dimensions = body.get("dimensions")
    if dimensions is not None:
        if isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1:
            raise InvalidRequest("dimensions must be a positive integer.", param="dimensions")
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
    return EmbeddingCall(model, inputs, encoding_format, dimensions, sum(counts))
