"""The README stays short and every relative link in the docs leads somewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from doc_blocks import REPO, RUNNABLE, SKIP, all_blocks, anchors, links, pages

README = REPO / "README.md"


def test_the_readme_stays_under_15_kb() -> None:
    assert README.stat().st_size < 15 * 1024


def test_the_readme_points_at_nothing_users_do_not_have() -> None:
    text = README.read_text()
    assert "DESIGN.md" not in text
    assert "../shared" not in text


def _relative_links() -> list[tuple[Path, str]]:
    found = []
    for page in pages():
        for target in links(page):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            found.append((page, target))
    return found


@pytest.mark.parametrize(
    ("page", "target"),
    _relative_links(),
    ids=lambda value: str(value.relative_to(REPO)) if isinstance(value, Path) else value,
)
def test_every_relative_link_resolves(page: Path, target: str) -> None:
    path_part, _, anchor = target.partition("#")
    destination = (page.parent / path_part).resolve() if path_part else page
    assert destination.exists(), f"{page.relative_to(REPO)} links to a missing {target}"
    if anchor and destination.suffix == ".md":
        assert anchor in anchors(destination), (
            f"{page.relative_to(REPO)} links to #{anchor}, which is no heading of {path_part or 'itself'}"
        )


def test_skip_markers_name_a_reason_and_stand_before_a_block() -> None:
    for page in pages():
        lines = page.read_text().splitlines()
        for i, line in enumerate(lines):
            if line.startswith("<!-- docs-test"):
                where = f"{page.relative_to(REPO)}:{i + 1}"
                assert SKIP.match(line.strip()), f"{where}: write <!-- docs-test: skip (reason) -->"
                assert i + 1 < len(lines) and lines[i + 1].startswith("```"), (
                    f"{where}: a skip marker goes on the line right before a block"
                )


def test_the_docs_have_runnable_blocks() -> None:
    """The command test below has something to run (a change to the block syntax would not
    silently turn it into a test of nothing)."""
    runnable = [b for b in all_blocks() if b.runnable]
    assert len(runnable) >= 15
    assert {b.lang for b in runnable} >= {"sh", "python"}
    assert {"sh", "bash", "console", "python"} <= RUNNABLE
