"""Summaries of py-spy's raw (collapsed-stack) output: where the samples went.

Lines look like `thread (TID): NAME;func (file.py:LINE);...;func (file.py:LINE) COUNT`
(`py-spy record --format raw --threads`). The same file feeds flamegraph.pl or speedscope.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]*?)(?::(?P<line>\d+))?\)$")
_THREAD = re.compile(r"^thread \(\w+\)(?:: (?P<name>.*))?$")


def _frame(raw: str) -> tuple[str, str]:
    """(`func (file)`, package) of one frame, the line number dropped."""
    m = _FRAME.match(raw)
    if not m:
        return raw, "?"
    file = m["file"]
    parts = file.split("/")
    if len(parts) == 1 and not file.endswith(".py"):
        package = "script"
    elif len(parts) == 1:
        package = "stdlib:" + parts[0].removesuffix(".py")
    elif parts[0] == "farebox" and len(parts) > 2:
        package = "farebox." + parts[1]
    elif parts[0] in ("asyncio", "concurrent", "json", "logging", "email", "http", "urllib"):
        package = "stdlib:" + parts[0]
    else:
        package = parts[0].removesuffix(".py")
    return f"{m['func']} ({file})", package


def summarise(text: str, top: int = 25) -> dict[str, Any]:
    total = 0
    threads: Counter[str] = Counter()
    self_fn: Counter[str] = Counter()
    incl_fn: Counter[str] = Counter()
    self_pkg: Counter[str] = Counter()
    incl_pkg: Counter[str] = Counter()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        thread = "?"
        if frames and (m := _THREAD.match(frames[0])):
            thread = re.sub(r"_\d+$", "_*", m["name"] or "unnamed")
            frames = frames[1:]
        if not frames:
            continue
        total += n
        threads[thread] += n
        parsed = [_frame(f) for f in frames]
        leaf_fn, leaf_pkg = parsed[-1]
        self_fn[leaf_fn] += n
        self_pkg[leaf_pkg] += n
        for fn in {fn for fn, _ in parsed}:
            incl_fn[fn] += n
        for pkg in {pkg for _, pkg in parsed}:
            incl_pkg[pkg] += n

    def pct(counter: Counter[str], k: int) -> list[tuple[str, float]]:
        return [(name, 100.0 * c / total) for name, c in counter.most_common(k)] if total else []

    return {
        "samples": total,
        "threads": pct(threads, 10),
        "self_by_package": pct(self_pkg, 15),
        "inclusive_by_package": pct(incl_pkg, 20),
        "self": pct(self_fn, top),
        "inclusive": pct(incl_fn, top + 15),
    }


def render(target: str, mode: str, prof: dict[str, Any]) -> str:
    if "error" in prof:
        return f"### profile {target} {mode}: failed: {prof['error']}"
    out = [
        f"### profile: {target}, {mode}, c={prof['conc']}, {prof['seconds']} s, "
        f"{prof['samples']} samples "
        f"({'GIL holder only' if prof.get('gil_only') else 'all running threads'}, "
        f"{'nonblocking' if prof.get('nonblocking') else 'blocking'}), "
        f"{prof['rps_while_profiled']:,.0f} req/s while sampled",
        f"(raw stacks: {prof['file']})",
        "",
        "threads: " + ", ".join(f"{n} {p:.1f}%" for n, p in prof["threads"]),
        "self time by package: " + ", ".join(f"{n} {p:.1f}%" for n, p in prof["self_by_package"]),
        "inclusive by package: "
        + ", ".join(f"{n} {p:.1f}%" for n, p in prof["inclusive_by_package"]),
        "",
        "(self time of `Runner.run`/`run_forever` = the event loop's own C code: uvloop, "
        "httptools, socket I/O; `_worker` self time = a DB thread runnable but not yet running)",
        "",
        "| self % | function (own time) |",
        "|---:|---|",
    ]
    out += [f"| {p:.1f} | `{n}` |" for n, p in prof["self"]]
    out += ["", "| incl. % | function (with callees) |", "|---:|---|"]
    out += [f"| {p:.1f} | `{n}` |" for n, p in prof["inclusive"]]
    return "\n".join(out)
