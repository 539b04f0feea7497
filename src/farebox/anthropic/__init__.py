"""Anthropic's Messages API: the `/v1/messages` front, and translation to and from OpenAI chat.

The chat pipeline carries OpenAI chat bodies; this package translates both ways:

- front (customer speaks Anthropic): `front_request` (Messages request -> OpenAI body),
  `front_response` and `front_stream` (OpenAI completion / SSE -> Anthropic message / events);
- upstream (provider speaks Anthropic): `upstream_request` (OpenAI body -> Messages request),
  `upstream_response` (Anthropic message / events -> OpenAI completion / SSE).

Thinking travels through the OpenAI form as OpenRouter's `reasoning_details` (text with its
signature, redacted blocks as `reasoning.encrypted`), plus `reasoning_content` for the text, so a
signed thinking block survives any number of hops unchanged.
"""
