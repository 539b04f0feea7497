"""The pieces on their own: access lines written whole in PIPE_BUF chunks, the multiprocess
directory prepared for `--workers`, and the settings read with clear errors."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from farebox.observe import multiproc
from farebox.observe.access_log import CHUNK, AccessLog
from farebox.observe.config import ObserveConfig


class Recording(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)


def test_lines_are_written_whole_in_chunks_of_at_most_pipe_buf() -> None:
    stream = Recording()
    log = AccessLog("text", stream)
    for i in range(500):  # no running loop: each line is written at once
        log.write(f"id{i}", "GET", "/healthz", 200, "none", 0, 0.001, 0.001, 0.0)
    assert len(stream.writes) == 500

    stream = Recording()
    log = AccessLog("text", stream)
    log._pending = [f"line {i} " + "x" * 90 for i in range(500)]  # as a busy loop turn leaves
    log._size = sum(len(line) + 1 for line in log._pending)
    log.flush()
    assert all(len(w.encode()) <= CHUNK and w.endswith("\n") for w in stream.writes)
    lines = "".join(stream.writes).splitlines()
    assert lines == [f"line {i} " + "x" * 90 for i in range(500)]
    assert len(stream.writes) < 20


async def test_lines_of_one_loop_turn_share_a_write() -> None:
    stream = Recording()
    log = AccessLog("json", stream)
    for i in range(5):
        log.write(f"id{i}", "GET", "/healthz", 200, "none", 10**9, 0.001, None, 0.0)
    assert stream.writes == []
    log.flush()
    assert len(stream.writes) == 1 and stream.writes[0].count("\n") == 5
    assert '"cost_usd":"1"' in stream.writes[0] and '"ttfb_ms":null' in stream.writes[0]


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
