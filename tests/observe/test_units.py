"""The pieces on their own: access lines written whole in PIPE_BUF chunks, the multiprocess
directory prepared for `--workers`, and the settings read with clear errors."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import time
from datetime import datetime
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from farebox.observe import multiproc
from farebox.observe.access_log import CHUNK, AccessLog
from farebox.observe.config import ObserveConfig
from farebox.observe.context import Record
from farebox.observe.finished import FLUSH_S, Finished
from farebox.observe.metrics import Metrics


class Recording(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)


def _record(i: int, nanos: int = 0, ttfb: float | None = 0.001) -> Record:
    return (f"id{i}", "GET", "/healthz", 200, "none", nanos, 0.0, time.perf_counter(), 0.001, ttfb)


def test_lines_are_written_whole_in_chunks_of_at_most_pipe_buf() -> None:
    stream = Recording()
    log = AccessLog("text", stream)
    long = [(*_record(i)[:2], "/" + "x" * 90, *_record(i)[3:]) for i in range(500)]
    log.write(long)
    assert all(len(w.encode()) <= CHUNK and w.endswith("\n") for w in stream.writes)
    lines = "".join(stream.writes).splitlines()
    assert [line.split()[1] for line in lines] == [f"request_id=id{i}" for i in range(500)]
    assert all(f"route=/{'x' * 90} " in line for line in lines)
    assert len(stream.writes) < 40  # ~115 kB of lines in ~4 kB writes


def test_text_and_json_lines_say_the_same_as_before() -> None:
    ended = time.perf_counter()
    record: Record = ("req_1", "POST", "/v1/chat/completions", 200, "m", 50400, 0.0123, ended,
                      0.04567, 0.02)  # fmt: skip
    text, js = Recording(), Recording()
    AccessLog("text", text).write([record])
    AccessLog("json", js).write([record, (*record[:5], 0, 0.0, ended, 0.001, None)])
    line = text.writes[0]
    assert line.endswith(
        " request_id=req_1 method=POST route=/v1/chat/completions status=200 model=m "
        "cost_usd=0.0000504 duration_ms=45.67 ttfb_ms=20.00 upstream_ms=12.30\n"
    )
    stamp = line.split()[0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp)
    first, second = (json.loads(x) for x in js.writes[0].splitlines())
    assert list(first) == [
        "time", "event", "request_id", "method", "route", "status", "model", "cost_usd",
        "duration_ms", "ttfb_ms", "upstream_ms",
    ]  # fmt: skip
    assert first == {
        "time": first["time"],
        "event": "request",
        "request_id": "req_1",
        "method": "POST",
        "route": "/v1/chat/completions",
        "status": 200,
        "model": "m",
        "cost_usd": "0.0000504",
        "duration_ms": 45.67,
        "ttfb_ms": 20.0,
        "upstream_ms": 12.3,
    }
    # The line's time is when the request ended, not when the batch was written.
    written = datetime.fromisoformat(first["time"].replace("Z", "+00:00")).timestamp()
    assert abs(written - (time.time() - (time.perf_counter() - ended))) < 1.0
    assert second["ttfb_ms"] is None and second["cost_usd"] == "0"


async def test_a_batch_is_written_once_after_the_requests_not_per_request() -> None:
    stream = Recording()
    metrics = Metrics(["m"], None)
    finished = Finished(metrics, AccessLog("json", stream))
    for i in range(5):
        finished.add(_record(i, nanos=10**9, ttfb=None))
    assert stream.writes == []  # gathered until the timer, a scrape or shutdown
    metrics.flush()  # what a scrape does first: the requests so far are counted and logged
    assert len(stream.writes) == 1 and stream.writes[0].count("\n") == 5
    assert '"cost_usd":"1"' in stream.writes[0] and '"ttfb_ms":null' in stream.writes[0]
    exported = generate_latest(metrics.registry).decode()
    assert 'farebox_requests_total{model="none",route="/healthz",status="200"} 5.0' in exported
    finished.add(_record(5))
    finished.flush()  # as at shutdown: nothing left waiting
    await asyncio.sleep(FLUSH_S * 2)  # the timers find nothing more to write
    assert len(stream.writes) == 2 and '"id5"' in stream.writes[1]


def test_without_a_loop_lines_are_written_at_once() -> None:
    stream = Recording()
    finished = Finished(None, AccessLog("text", stream))
    for i in range(3):
        finished.add(_record(i))
    assert len(stream.writes) == 3


def test_workers_directory_is_made_or_emptied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = tmp_path / "given"
    given.mkdir()
    (given / "counter_1.db").write_bytes(b"old")
    (given / "keep.txt").write_text("not ours")
    monkeypatch.setenv(multiproc.ENV, str(given))
    assert multiproc.prepare_for_workers() == str(given)
    assert sorted(p.name for p in given.iterdir()) == ["keep.txt"]

    monkeypatch.delenv(multiproc.ENV)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    made = multiproc.prepare_for_workers()
    assert os.environ[multiproc.ENV] == made and Path(made).parent == tmp_path
    assert multiproc.active_dir() is None  # this process chose in-memory values at import


def test_settings_parse_and_refuse_nonsense() -> None:
    assert ObserveConfig.from_env({}) == ObserveConfig(True, "text", True, False)
    env = {"FAREBOX_LOG_FORMAT": "JSON", "FAREBOX_METRICS_PUBLIC": "yes"}
    config = ObserveConfig.from_env(env)
    assert config.log_format == "json" and config.metrics_public
    with pytest.raises(ValueError, match="FAREBOX_LOG_FORMAT must be text or json"):
        ObserveConfig.from_env({"FAREBOX_LOG_FORMAT": "xml"})
    with pytest.raises(ValueError, match="FAREBOX_ACCESS_LOG"):
        ObserveConfig.from_env({"FAREBOX_ACCESS_LOG": "maybe"})


def test_serve_refuses_a_bad_log_format_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from farebox.cli import main

    monkeypatch.setenv("FAREBOX_LOG_FORMAT", "xml")
    result = CliRunner().invoke(main, ["serve", "--port", "1"])
    assert result.exit_code == 1
    assert "configuration: FAREBOX_LOG_FORMAT must be text or json, not 'xml'" in result.output


def test_upstream_attempts_are_observed_at_the_flush_and_never_pile_up() -> None:
    """The router's attempts wait in a list for the metrics' flush (observe/metrics.py); with
    no flusher running, MAX_ATTEMPTS of them are observed at once."""
    from farebox.observe.metrics import MAX_ATTEMPTS

    metrics = Metrics(["m"], None)

    def count() -> float:
        text = generate_latest(metrics.registry).decode()
        found = re.search(r'farebox_upstream_seconds_count\{model="m",provider="p"\} (\S+)', text)
        return float(found.group(1)) if found else 0.0

    metrics.upstream_attempt("p", "m", 0.25)
    assert count() == 0  # not yet flushed
    metrics.flush()
    assert count() == 1
    for _ in range(MAX_ATTEMPTS + 5):
        metrics.upstream_attempt("p", "m", 0.01)
    assert len(metrics._attempts) == 5  # the first MAX_ATTEMPTS were observed at once
    metrics.flush()
    assert count() == 1 + MAX_ATTEMPTS + 5
