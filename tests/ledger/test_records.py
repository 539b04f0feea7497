"""`@record` (farebox/records.py): the ledger's per-request values are unfrozen at run time for
speed, so what frozen gave them must still hold: equality and a hash from the fields, slots, and
a type checker that rejects an assignment."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

from mypy import api as mypy_api

from farebox.billing.pricing import TokenUsage
from farebox.ledger.types import KeyBudget, QueryRecord


def test_records_compare_and_hash_by_their_fields_and_have_slots() -> None:
    a = QueryRecord(model="m", input_count=1, output_count=2, query_type="chat")
    b = QueryRecord(model="m", input_count=1, output_count=2, query_type="chat")
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert dataclasses.replace(a, output_count=3) != a
    assert not hasattr(a, "__dict__")
    usage = TokenUsage(prompt_tokens=1, completion_tokens=2)
    assert {usage: "x"}[TokenUsage(prompt_tokens=1, completion_tokens=2)] == "x"


def test_a_type_checker_rejects_assigning_a_records_field(tmp_path: Path) -> None:
    code = tmp_path / "assign.py"
    code.write_text(
        textwrap.dedent(
            """
            from farebox.billing.pricing import TokenUsage
            from farebox.ledger.types import KeyBudget

            def change(usage: TokenUsage, key: KeyBudget) -> None:
                usage.prompt_tokens = 3
                key.key_id = "other"
            """
        )
    )
    out, _, status = mypy_api.run([str(code), "--no-incremental", "--follow-imports=silent"])
    assert status == 1, out
    assert out.count("is read-only") == 2, out
    assert KeyBudget.__hash__ is not None
