"""Processes the benchmark starts (each in its own session, always stopped) and the load it
drives: ports, probes and wrk runs."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODEL = "fake-gpt"
# Bodies identical to post.lua's (for the probes).
BODY = {
    "nonstream": b'{"model":"fake-gpt","messages":[{"role":"user","content":"Say hello in twenty '
    b'tokens please."}],"max_tokens":32}',
    "stream": b'{"model":"fake-gpt","messages":[{"role":"user","content":"Say hello in twenty '
    b'tokens please."}],"max_tokens":32,"stream":true,"stream_options":{"include_usage":true}}',
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- processes


class Processes:
    """Every process this run starts, each in its own session; all stopped on exit."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.upstream: subprocess.Popen[bytes] | None = None

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        out = open(self.logdir / f"{name}.log", "ab")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen(
            argv,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=self.logdir,
        )
        out.close()
        self.procs.append((name, proc))
        return proc

    def start_piped(
        self, name: str, argv: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """A short-lived tool (wrk, py-spy) whose output `collect` returns."""
        proc = subprocess.Popen(
            argv,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.procs.append((name, proc))
        return proc

    def collect(self, proc: subprocess.Popen[bytes], timeout: float) -> bytes:
        """Wait for a `start_piped` process and return its output; killed if it overstays."""
        try:
            out, _ = proc.communicate(timeout=timeout)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
            self.procs = [(n, p) for n, p in self.procs if p is not proc]
        return out

    def stop(self, proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
        """SIGTERM (graceful for uvicorn: it runs its shutdown and the app's lifespan), then
        SIGKILL the process's group (its own session: only what this script started)."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                log(f"  pid {proc.pid} still running {grace}s after SIGTERM: SIGKILL")
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        self.procs = [(n, p) for n, p in self.procs if p is not proc]

    def stop_all(self) -> None:
        for _name, proc in reversed(list(self.procs)):
            self.stop(proc, grace=3.0)

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.logdir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"process {proc.args!r} exited with {proc.returncode} before listening"
            )
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s ({proc.args!r})")


def probe(url: str, key: str, mode: str, timeout: float = 10.0) -> dict[str, Any]:
    """One request like post.lua's; what came back (status, SSE events, finish reasons, usage)."""
    req = urllib.request.Request(
        url,
        data=BODY[mode],
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, body = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    out: dict[str, Any] = {"status": status, "bytes": len(body)}
    if status != 200:
        out["body"] = body[:500].decode(errors="replace")
        return out
    finish: list[str] = []
    usage = None
    if mode == "stream":
        events = [e for e in body.replace(b"\r\n", b"\n").split(b"\n\n") if e.strip()]
        out["events"] = len(events)
        for e in events:
            if not e.startswith(b"data: ") or e == b"data: [DONE]":
                continue
            obj = json.loads(e[6:])
            for ch in obj.get("choices") or []:
                if ch.get("finish_reason"):
                    finish.append(ch["finish_reason"])
            usage = obj.get("usage") or usage
    else:
        obj = json.loads(body)
        finish = [ch.get("finish_reason") for ch in obj.get("choices", [])]
        usage = obj.get("usage")
    out["finish_reasons"] = finish
    out["usage"] = usage
    return out


# --------------------------------------------------------------------------- wrk


def run_wrk(
    args: argparse.Namespace,
    url: str,
    conc: int,
    seconds: int,
    key: str,
    mode: str,
    procs: Processes,
) -> dict[str, Any]:
    env = {**os.environ, "KEY": key, "MODEL": MODEL, "STREAM": "1" if mode == "stream" else "0"}
    argv = [
        "taskset",
        "-c",
        "0",
        args.wrk,
        "-t1",
        f"-c{conc}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(args.lua),
        url,
    ]
    proc = procs.start_piped("wrk", argv, env)
    text = procs.collect(proc, seconds + 30).decode(errors="replace")
    for line in text.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[7:])
            result["socket_errors"] = sum(
                result[k] for k in ("err_connect", "err_read", "err_write", "err_timeout")
            )
            return result
    raise RuntimeError(f"wrk printed no RESULT line (exit {proc.returncode}):\n{text[-2000:]}")


@dataclass
class Target:
    """One target under load: its name, URL, key and process (and what was learnt of it)."""

    name: str
    url: str
    key: str
    proc: subprocess.Popen[bytes]
    extra: dict[str, Any] = field(default_factory=dict)
