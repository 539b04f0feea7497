"""The catalog's genai-prices references looked up in a child process give the same catalog as
looked up in this one (a serving process uses the child, so it never loads genai-prices)."""

from __future__ import annotations

from datetime import UTC, datetime

from farebox.catalog.cost_refs import CostNotFound, look_up_here, look_up_in_child
from farebox.catalog.loader import load_catalog

from support import run_python

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_the_shipped_catalog_priced_in_a_child_equals_the_one_priced_here() -> None:
    here = load_catalog(None, env={}, at=AT)
    in_child = load_catalog(None, env={}, at=AT, costs_in_child=True)
    assert in_child == here


def test_a_reference_genai_prices_lacks_keeps_its_reason_across_the_process_boundary() -> None:
    refs = [("openai", "no-such-model", True), ("deepseek", "deepseek-chat", True)]
    here, in_child = look_up_here(refs, AT), look_up_in_child(refs, AT)
    assert isinstance(in_child[refs[0]], CostNotFound)
    assert str(in_child[refs[0]]) == str(here[refs[0]])
    assert in_child[refs[1]] == here[refs[1]]


def test_loading_in_a_child_leaves_genai_prices_out_of_this_process() -> None:
    code = (
        "import sys; from farebox.catalog.loader import load_catalog; "
        "load_catalog(None, env={}, costs_in_child=True); "
        "print('genai_prices' in sys.modules)"
    )
    done = run_python(code)
    assert done.stdout.strip() == "False"
