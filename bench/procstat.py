"""CPU time, RSS and per-core busy time from /proc (Linux)."""

from __future__ import annotations

import os
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    return raw[raw.rindex(")") + 2 :].split()


def tree(pid: int) -> list[int]:
    """pid and all its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            f = _stat_fields(int(entry))
            if f is not None:
                children.setdefault(int(f[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def tree_cpu_s(pid: int) -> float:
    """utime + stime of pid and its live descendants, plus their reaped children's (cutime,
    cstime), in seconds."""
    ticks = 0
    for p in tree(pid):
        f = _stat_fields(p)
        if f is not None:
            # after "(comm) ": state=0 ppid=1 ... utime=11 stime=12 cutime=13 cstime=14
            ticks += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    return ticks / CLK_TCK


def tree_rss_mb(pid: int) -> float:
    kb = 0
    for p in tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    kb += int(line.split()[1])
                    break
        except OSError:
            pass
    return kb / 1024


def cores() -> dict[int, tuple[int, int]]:
    """Per core: (busy ticks, total ticks) since boot."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu") and line[3:4].isdigit():
            name, *vals = line.split()
            v = [int(x) for x in vals]
            idle = v[3] + (v[4] if len(v) > 4 else 0)  # idle + iowait
            total = sum(v[:8])  # guest time is already counted in user
            out[int(name[3:])] = (total - idle, total)
    return out


def busy_pct(
    before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]]
) -> dict[int, float]:
    out = {}
    for core, (busy1, total1) in after.items():
        busy0, total0 = before.get(core, (0, 0))
        out[core] = 100.0 * (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0
    return out


def busy_s(before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]]) -> float:
    """Busy CPU seconds over all cores between two `cores()` readings."""
    return sum(after[c][0] - before.get(c, (0, 0))[0] for c in after) / CLK_TCK
