"""The benchmark's table and its PASS/MISS/FAIL lines against DESIGN.md §3's targets."""

from __future__ import annotations

from typing import Any

ALL_MODES = ("nonstream", "stream")
# DESIGN.md §3: share of lean_proxy's req/s at c=16 and c=64, both modes; added p50 at c=1.
RATIO_TARGET = {"farebox-sqlite": 0.50, "farebox-postgres": 0.40}
TARGET_CONCS = (16, 64)
ADDED_P50_TARGET_MS = 1.0


def fmt(x: float | None, spec: str) -> str:
    return "–" if x is None else format(x, spec)


def report(
    cells: list[dict[str, Any]], targets: dict[str, dict[str, Any]]
) -> tuple[str, list[str]]:
    by = {(c["target"], c["mode"], c["conc"]): c for c in cells}
    head = (
        "| target | mode | conc | req/s | p50 ms | p99 ms | CPU µs/req | RSS MB | non-200 "
        "| sock err | ratio vs lean_proxy | added p50 at c=1 | other procs' CPU % |"
    )
    lines = [head, "|" + "---|" * 13]
    for c in cells:
        lean = by.get(("lean_proxy", c["mode"], c["conc"]))
        direct = by.get(("direct", c["mode"], 1))
        ratio = c["rps"] / lean["rps"] if lean and lean["rps"] else None
        added = None
        if c["conc"] == 1 and direct and c["target"] != "direct":
            added = c["p50_ms"] - direct["p50_ms"]
        c["ratio_vs_lean"] = ratio
        c["added_p50_ms"] = added
        bad = c["non200"] + c["socket_errors"]
        lines.append(
            f"| {c['target']} | {c['mode']} | {c['conc']} | {c['rps']:,.0f} | {c['p50_ms']:.2f} "
            f"| {c['p99_ms']:.2f} | {c['cpu_us_per_req']:,.0f} | {c['rss_mb']:.0f} "
            f"| {'**' + str(c['non200']) + '**' if c['non200'] else 0} "
            f"| {'**' + str(c['socket_errors']) + '**' if c['socket_errors'] else 0} "
            f"| {fmt(ratio, '.2f')} | {'' if added is None else format(added, '+.2f') + ' ms'} "
            f"| {c['other_cpu_pct']:.0f} |" + (" ⚠" if bad else "")
        )
    verdicts: list[str] = []
    noise = [c["other_cpu_pct"] for c in cells]
    if noise and max(noise) > 20:
        verdicts.append(
            f"WARN  noisy machine: other processes used {sum(noise) / len(noise):.0f}% of a core "
            f"on average during the measured cells (max {max(noise):.0f}%); both cores are shared "
            "with them, so absolute figures are low and the ratios are the part to trust"
        )
    for name, need in RATIO_TARGET.items():
        if not any(c["target"] == name for c in cells):
            continue
        for mode in ALL_MODES:
            for conc in TARGET_CONCS:
                cc = by.get((name, mode, conc))
                if cc is None:
                    continue
                if cc["ratio_vs_lean"] is None:
                    verdicts.append(f"n/a   {name} {mode} c={conc}: lean_proxy not measured")
                    continue
                ok = cc["ratio_vs_lean"] >= need
                verdicts.append(
                    f"{'PASS' if ok else 'MISS'}  {name} {mode} c={conc}: "
                    f"{cc['ratio_vs_lean']:.2f} of lean_proxy (need ≥ {need:.2f})"
                )
            c1 = by.get((name, mode, 1))
            if c1 is not None:
                if c1["added_p50_ms"] is None:
                    verdicts.append(f"n/a   {name} {mode} added p50 at c=1: direct not measured")
                else:
                    ok = c1["added_p50_ms"] <= ADDED_P50_TARGET_MS
                    verdicts.append(
                        f"{'PASS' if ok else 'MISS'}  {name} {mode} added p50 at c=1: "
                        f"{c1['added_p50_ms']:+.2f} ms over direct (need ≤ {ADDED_P50_TARGET_MS:.1f} ms)"
                    )
        extra = targets.get(name, {})
        bad = sum(c["non200"] + c["socket_errors"] for c in cells if c["target"] == name)
        verdicts.append(
            f"{'PASS' if bad == 0 else 'FAIL'}  {name} every response 200, no socket errors"
            + ("" if bad == 0 else f": {bad} BAD RESPONSES — see the table")
        )
        chk = extra.get("ledger_check", {})
        verdicts.append(
            f"{'PASS' if chk.get('exit_code') == 0 else 'FAIL'}  {name} farebox ledger check: "
            f"exit {chk.get('exit_code')}: {chk.get('output', '').splitlines()[-1:] or ''}"
        )
        led = extra.get("ledger", {})
        if "error" in led:
            verdicts.append(f"FAIL  {name} spend vs history: {led['error']}")
        elif led:
            done, slack = extra.get("completed", 0), extra.get("inflight_max", 0)
            rows_ok = done <= led["history_rows"] <= done + slack + 10
            ok = led["spend_equals_history"] and led["open_holds"] == 0 and rows_ok
            verdicts.append(
                f"{'PASS' if ok else 'FAIL'}  {name} spend {led['spend_nanos']} n$ = Σ history "
                f"{led['history_sum_nanos']} n$: {led['spend_equals_history']}; open holds "
                f"{led['open_holds']}; history rows {led['history_rows']} for {done} completed "
                f"requests (+ ≤ {slack} cut in flight)"
            )
        if extra.get("log_tracebacks") or extra.get("log_errors"):
            verdicts.append(
                f"WARN  {name} server log: {extra['log_tracebacks']} tracebacks, "
                f"{extra['log_errors']} ERROR lines; exceptions: {extra.get('log_exceptions')}"
            )
        probe_s = extra.get("probe", {}).get("stream")
        if probe_s and "length" in (probe_s.get("finish_reasons") or []):
            verdicts.append(
                f"NOTE  {name} stream probe ended with finish_reason 'length' after "
                f"{probe_s.get('events')} events (direct: "
                f"{targets.get('direct', {}).get('probe', {}).get('stream', {}).get('events', '?')}"
                "): farebox counts the fake upstream's deltas as more than post.lua's "
                "max_tokens=32 and cuts the stream early (and drops that upstream connection), so "
                "its stream cells relay less than lean_proxy does"
            )
    return "\n".join(lines), verdicts


# --------------------------------------------------------------------------- main
