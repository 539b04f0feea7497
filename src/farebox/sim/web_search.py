"""Provider-run web search in the simulated chat APIs, as the real ones report it.

- OpenAI chat completions with `web_search_options` (OpenAI's search models): the answer carries
  `url_citation` annotations (a delta of its own when streamed); usage has no search count.
- Perplexity (an upstream model id starting with `sonar`): every answer lists its sources in
  top-level `citations` and `search_results` (on the last chunk when streamed).
- Anthropic Messages with a `web_search_*` server tool: before the text, a `server_tool_use`
  block (the query) and a `web_search_tool_result` block (the pages) per search; the text cites
  the pages (`citations`, or `citations_delta` when streamed); the pages count as input tokens,
  and `usage.server_tool_use.web_search_requests` counts the searches. Searches beyond the
  tool's `max_uses` are refused with a `max_uses_exceeded` error result and not counted.

The model searches `sim.web_searches` times (default 1; 0: it answers without searching).
Results come from farebox.sim.search (deterministic, RESULTS per search).
"""

from __future__ import annotations

import base64
from typing import Any

from farebox.sim.search import results_for
from farebox.sim.tokens import Tokenizer

RESULTS = 3
DEFAULT_SEARCHES = 1


def openai_annotations(prompt: str, searches: int | None) -> list[dict[str, Any]]:
    """`url_citation` annotations for a search model's answer (none when it did not search)."""
    if searches == 0:
        return []
    return [
        {
            "type": "url_citation",
            "url_citation": {
                "url": r["url"],
                "title": r["title"],
                "start_index": 0,
                "end_index": 0,
            },
        }
        for r in results_for(" ".join(prompt.split()[:8]), RESULTS, [], [])
    ]


PERPLEXITY_PREFIX = "sonar"
"""Upstream model ids answered as Perplexity does: every request searches, and the reply lists
its sources top-level (`citations`, `search_results`) rather than as annotations."""


def perplexity_sources(prompt: str) -> dict[str, Any]:
    found = results_for(" ".join(prompt.split()[:8]), RESULTS, [], [])
    return {
        "citations": [r["url"] for r in found],
        "search_results": [
            {"title": r["title"], "url": r["url"], "date": r["date"]} for r in found
        ],
    }


def search_tool(body: dict[str, Any]) -> dict[str, Any] | None:
    """The request's web search server tool, if it offers one."""
    for tool in body.get("tools") or ():
        if isinstance(tool, dict) and str(tool.get("type", "")).startswith("web_search_"):
            return tool
    return None


def anthropic_searches(
    tool: dict[str, Any], prompt: str, asked: int | None, next_id: int, tok: Tokenizer
) -> tuple[list[dict[str, Any]], list[int], list[dict[str, Any]], int, int]:
    """(blocks, their output tokens, citations for the answer, searches run, input tokens the
    pages add) for a request offering `tool`."""
    wanted = DEFAULT_SEARCHES if asked is None else asked
    limit = tool.get("max_uses")
    allowed = wanted if not isinstance(limit, int) else min(wanted, limit)
    query = " ".join(prompt.split()[:8]) or "search"
    include = [d for d in tool.get("allowed_domains") or () if isinstance(d, str)]
    exclude = [d for d in tool.get("blocked_domains") or () if isinstance(d, str)]
    blocks: list[dict[str, Any]] = []
    counts: list[int] = []
    citations: list[dict[str, Any]] = []
    pages = 0
    for n in range(wanted):
        use_id = f"srvtoolu_sim{next_id:08x}{n:02x}"
        blocks.append(
            {
                "type": "server_tool_use",
                "id": use_id,
                "name": "web_search",
                "input": {"query": query},
            }
        )
        counts.append(tok.count(query) + 3)
        if n >= allowed:
            content: Any = {
                "type": "web_search_tool_result_error",
                "error_code": "max_uses_exceeded",
            }
        else:
            found = results_for(f"{query} {n + 1}" if n else query, RESULTS, include, exclude)
            content = [
                {
                    "type": "web_search_result",
                    "url": r["url"],
                    "title": r["title"],
                    "encrypted_content": base64.b64encode(r["text"].encode()).decode(),
                    "page_age": r["date"],
                }
                for r in found
            ]
            pages += sum(tok.count(r["title"] + " " + r["text"]) for r in found)
            citations += [
                {
                    "type": "web_search_result_location",
                    "url": r["url"],
                    "title": r["title"],
                    "encrypted_index": base64.b64encode(r["url"].encode()).decode(),
                    "cited_text": r["text"],
                }
                for r in found[:1]
            ]
        blocks.append({"type": "web_search_tool_result", "tool_use_id": use_id, "content": content})
        counts.append(0)
    return blocks, counts, citations, allowed, pages
