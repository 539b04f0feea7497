"""Every setting the code reads is documented, with the default the code really uses, and every
setting the docs name is read by something (no stale names).

The documentation is README.md and every page under docs/: the reference is
docs/operators/configuration.md, and pages that explain a feature may document its settings too."""

from __future__ import annotations

import re
from pathlib import Path

from farebox.nwc.auto import AutoTopupConfig

REPO = Path(__file__).resolve().parents[2]
SETTING = re.compile(r"FAREBOX_[A-Z0-9_]*[A-Z0-9]")
INTERNAL: set[str] = set()  # names in the code that are not settings (none yet)


def documentation() -> str:
    """The README and every page under docs/ (where the README's sections may move)."""
    pages = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    return "\n".join(page.read_text() for page in pages if page.exists())


def settings_in_code() -> set[str]:
    names: set[str] = set()
    for source in (REPO / "src" / "farebox").rglob("*.py"):
        names.update(re.findall(r'"(FAREBOX_[A-Z0-9_]*[A-Z0-9])"', source.read_text()))
    return names - INTERNAL


def test_every_farebox_setting_the_code_reads_is_documented() -> None:
    documented = set(SETTING.findall(documentation()))
    missing = sorted(settings_in_code() - documented)
    assert not missing, f"settings read by the code but named nowhere in the docs: {missing}"


def _read(name: str, code: str) -> bool:
    """The name in the code, whole or as a quoted prefix plus a quoted rest (ENV_PREFIX + "RETRIES")."""
    if name in code:
        return True
    cuts = [i + 1 for i, char in enumerate(name) if char == "_"]
    return any(f'"{name[:i]}"' in code and f'"{name[i:]}"' in code for i in cuts)


def test_every_setting_the_docs_name_is_read_somewhere() -> None:
    """A setting renamed or removed in the code is renamed or removed in the docs too. Test-only
    and benchmark variables (docs/development.md) count as read."""
    named = set(re.findall(r"\bFAREBOX_[A-Z0-9_]*[A-Z0-9]\b", documentation()))
    sources = [*(REPO / "src").rglob("*.py"), *(REPO / "tests").rglob("*.py")]
    sources += [*(REPO / "bench").rglob("*.py"), REPO / ".ci" / "run"]
    read = "\n".join(path.read_text() for path in sources if path.exists())
    stale = sorted(name for name in named if not _read(name, read))
    assert not stale, f"the docs name settings nothing reads: {stale}"


def test_nwc_timings_documented_with_the_defaults_in_force() -> None:
    """The table says what AutoTopupConfig really uses (it once said 30 s where 10 s applied)."""
    text = documentation()
    defaults = AutoTopupConfig()
    expected = {
        "FAREBOX_NWC_TIMEOUT_S": defaults.pay_timeout_s,
        "FAREBOX_NWC_CONFIRM_S": defaults.confirm_timeout_s,
        "FAREBOX_NWC_DEBOUNCE_S": defaults.debounce_s,
        "FAREBOX_NWC_RETRY_S": defaults.retry_interval_s,
    }
    for name, value in expected.items():
        row = re.search(rf"^\| `{name}` \| `([0-9.]+)` \|", text, re.MULTILINE)
        assert row is not None, f"{name} has no row in the NWC timings table"
        assert float(row.group(1)) == value, name
    pair = re.search(
        r"^\| `FAREBOX_NWC_BACKOFF_S`, `FAREBOX_NWC_BACKOFF_MAX_S` \| `([0-9.]+)`, `([0-9.]+)` \|",
        text,
        re.MULTILINE,
    )
    assert pair is not None
    assert (float(pair.group(1)), float(pair.group(2))) == (
        defaults.backoff_base_s,
        defaults.backoff_max_s,
    )
