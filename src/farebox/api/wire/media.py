"""Embeddings, images, speech, transcription and video: what the media routes read.

The shapes here hold for every model; what a given model accepts (its parameters, their allowed
values, its voices and context) is the catalog's, checked by the domain readers after these.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)

from farebox.api.wire.types import Body, PassThroughBody, Query, StrictBody
from farebox.embeddings.request import MAX_INPUTS, EmbeddingInput
from farebox.errors import InvalidRequest
from farebox.images.request import MAX_IMAGES

ModelId = Annotated[str, StringConstraints(min_length=1, max_length=200)]
TokenIds = Annotated[list[StrictInt], Field(min_length=1)]
T = TypeVar("T")
NonEmpty = Annotated[list[T], Field(min_length=1)]
Text = Annotated[str, StringConstraints(min_length=1)]
Loose = str | StrictInt | StrictFloat
"""A choice parameter's value: a string, though a number (a size, a duration) is read as text."""


def _input_error() -> InvalidRequest:
    return InvalidRequest(
        "input must be a non-empty string, a list of non-empty strings, or token ids "
        "(a list of integers, or a list of such lists).",
        param="input",
    )


class EmbeddingsRequest(Body):
    """POST /v1/embeddings (OpenAI's shape)."""

    model: ModelId
    input: Text | NonEmpty[Text] | TokenIds | NonEmpty[TokenIds] = Field(
        description=f"At most {MAX_INPUTS} items."
    )
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: Annotated[StrictInt, Field(ge=1)] | None = None
    user: str | None = None

    @field_validator("input", mode="wrap")
    @classmethod
    def _one_error_for_input(cls, value: Any, handler: Any) -> Any:
        if isinstance(value, list) and len(value) > MAX_INPUTS:
            raise InvalidRequest(f"input may hold at most {MAX_INPUTS} items.", param="input")
        try:
            return handler(value)
        except ValueError:  # a union's many failures: one sentence about what input may be
            raise _input_error() from None

    def ask(self) -> EmbeddingInput:
        """The request in the domain's terms: input as a list (of texts or of token-id lists)."""
        value = self.input
        inputs: list[str] | list[list[int]]
        if isinstance(value, str):
            inputs = [value]
        elif isinstance(value[0], int):
            inputs = [list(value)]  # one list of token ids
        else:
            inputs = value  # texts, or token-id lists
        return EmbeddingInput(self.model, inputs, self.encoding_format or "float", self.dimensions)


class ImageGenerationRequest(PassThroughBody):
    """POST /v1/images/generations. Other parameters (quality, resolution, output_format,
    negative_prompt, image_url, ...) are accepted per model: see GET /v1/models?type=image."""

    model: ModelId
    prompt: str | None = None
    n: (
        Annotated[StrictInt, Field(ge=1, le=MAX_IMAGES)]
        | Annotated[str, Field(max_length=2)]
        | None
    ) = None
    num_images: StrictInt | str | None = Field(None, description="PPQ's name for n.")
    size: Loose | None = None
    aspect_ratio: Loose | None = Field(None, description="PPQ's name for size.")
    response_format: Literal["url", "b64_json"] | None = None
    image_url: str | None = None
    user: str | None = None


Binary = Annotated[Any, WithJsonSchema({"type": "string", "format": "binary"})]
"""An uploaded file: read from the multipart body, not from these text fields."""


class ImageEditForm(PassThroughBody):
    """POST /v1/images/edits (multipart/form-data): the image file, and text fields as for
    generations (n as text)."""

    model_config = ConfigDict(json_schema_extra={"required": ["image", "model"]})

    image: Binary = None
    mask: Binary = None
    model: ModelId | None = None
    prompt: str | None = None
    n: Annotated[str, Field(max_length=2)] | None = None
    size: str | None = None
    response_format: Literal["url", "b64_json"] | None = None


class SpeechRequest(StrictBody):
    """POST /v1/audio/speech (OpenAI's shape); the answer is the audio, streamed."""

    model: str | None = Field(None, description="Default: aura-2-arcas-en.")
    input: str
    voice: str | None = None
    response_format: str | None = Field(None, description="mp3, opus, aac, flac, wav or pcm.")
    speed: Annotated[float, Field(strict=True, ge=0.25, le=4)] | None = None
    instructions: str | None = None


class TranscriptionForm(Body):
    """POST /v1/audio/transcriptions (multipart/form-data)."""

    model_config = ConfigDict(json_schema_extra={"required": ["file"]})

    file: Binary = None
    model: str | None = None
    response_format: str | None = None
    language: str | None = None
    prompt: str | None = None
    temperature: str | None = None


class VideoRequest(PassThroughBody):
    """POST /v1/videos. Other parameters (duration, quality, aspect_ratio, resolution,
    negative_prompt, image_url, video_url) are accepted per model: see GET /v1/models?type=video."""

    model: ModelId
    prompt: str
    duration: Loose | None = None
    image_url: str | None = None
    user: str | None = None


class SignedQuery(Query):
    """A signed URL's query (media files, a video's status_url)."""

    sig: str | None = None
    exp: str | None = None


class Embedding(BaseModel):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str


class EmbeddingsAnswer(BaseModel):
    object: Literal["list"]
    data: list[Embedding]
    model: str
    usage: dict[str, int]


class ImagesAnswer(BaseModel):
    created: int
    data: list[dict[str, Any]]


class VideoJob(BaseModel):
    model_config = {"extra": "allow"}

    id: str
    status: str
    model: str | None = None
