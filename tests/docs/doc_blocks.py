"""The documentation's pages, their fenced code blocks and their relative links.

A block runs when its language is a shell (`sh`, `bash`, `console`) or `python`, unless the
line right before its opening fence is `<!-- docs-test: skip (reason) -->`. Other languages
(`text`, `json`, `ini`, ...) are never run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHELLS = frozenset({"sh", "bash", "console"})
RUNNABLE = SHELLS | {"python"}
SKIP = re.compile(r"^<!-- docs-test: skip \((?P<reason>[^)]+(?:\([^)]*\)[^)]*)*)\) -->$")
FENCE = re.compile(r"^```(?P<lang>[A-Za-z0-9_+-]*)\s*$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    skip: str | None  # the reason, when marked

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"

    @property
    def runnable(self) -> bool:
        return self.lang in RUNNABLE and self.skip is None


def pages() -> list[Path]:
    """README.md and every Markdown page under docs/."""
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def blocks(page: Path) -> list[Block]:
    found: list[Block] = []
    lines = page.read_text().splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        start = i
        i += 1
        body: list[str] = []
        while i < len(lines) and lines[i].rstrip() != "```":
            body.append(lines[i])
            i += 1
        previous = lines[start - 1].strip() if start > 0 else ""
        marker = SKIP.match(previous)
        found.append(
            Block(
                page=page,
                line=start + 1,
                lang=opening["lang"],
                code="\n".join(body) + "\n",
                skip=marker["reason"] if marker else None,
            )
        )
        i += 1
    return found


def all_blocks() -> list[Block]:
    return [block for page in pages() for block in blocks(page)]


LINK = re.compile(r"(?<!!)\[[^\]]*\]\((?P<target>[^)\s]+)\)|!\[[^\]]*\]\((?P<image>[^)\s]+)\)")


def without_fences(text: str) -> str:
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def prose(text: str) -> str:
    """The page without its fenced blocks and inline code (links there are not links)."""
    return re.sub(r"`[^`\n]*`", "", without_fences(text))


def links(page: Path) -> list[str]:
    return [m["target"] or m["image"] for m in LINK.finditer(prose(page.read_text()))]


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for the page's headings."""
    found: set[str] = set()
    for line in without_fences(page.read_text()).splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            slug = re.sub(r"[^\w\- ]", "", title).replace(" ", "-")
            found.add(slug)
    return found
