"""Reasoning budgets a request carries, kept below the output token cap it is sent.

A budget at or above the cap is refused by Anthropic (`budget_tokens` must be below
`max_tokens`) and worth nothing elsewhere: when the cap is lowered to what the customer can pay
for, the budget comes down with it. Both the chat pipeline (for an OpenAI-format body) and the
Anthropic upstream (for a Messages body) fit budgets here, so the rule lives in one place.
"""

from __future__ import annotations

from typing import Any

MIN_THINKING_BUDGET = 1024
"""Anthropic's smallest `thinking.budget_tokens` (and OpenRouter's `reasoning.max_tokens`)."""


def fit_thinking(body: dict[str, Any], cap: int) -> None:
    """Keep an enabled `thinking.budget_tokens` (Anthropic's field) below `cap`; turn thinking
    off when no budget Anthropic accepts fits, rather than have the upstream refuse the call."""
    thinking = body.get("thinking")
    if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
        return
    budget = thinking.get("budget_tokens")
    limit = cap - 1
    if isinstance(budget, int) and budget > limit:
        if limit < MIN_THINKING_BUDGET:
            body["thinking"] = {"type": "disabled"}
        else:
            body["thinking"] = {**thinking, "budget_tokens": limit}


def fit_reasoning(body: dict[str, Any], cap: int) -> None:
    """Keep OpenRouter's `reasoning.max_tokens` below `cap` (dropped when no budget of at least
    1024 fits: the effort, if any, then shares out the cap)."""
    reasoning = body.get("reasoning")
    if not isinstance(reasoning, dict):
        return
    budget = reasoning.get("max_tokens")
    limit = cap - 1
    if isinstance(budget, int) and not isinstance(budget, bool) and budget > limit:
        fitted = {k: v for k, v in reasoning.items() if k != "max_tokens"}
        if limit >= MIN_THINKING_BUDGET:
            fitted["max_tokens"] = limit
        body["reasoning"] = fitted
