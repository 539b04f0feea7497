"""The real Claude Code CLI (npm @anthropic-ai/claude-code, pinned), installed once per machine.

`.ci/run` installs it into `.cache/claude-code`; run locally, the first test session installs it
there itself (npm, about 400 MB). Set FAREBOX_CLAUDE_CODE_DIR to use another folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CLAUDE_CODE_VERSION = "2.1.332"
REPO = Path(__file__).resolve().parents[2]


def _install_dir() -> Path:
    return Path(os.environ.get("FAREBOX_CLAUDE_CODE_DIR") or REPO / ".cache" / "claude-code")


def _installed(binary: Path) -> bool:
    if not binary.exists():
        return False
    out = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    return out.returncode == 0 and out.stdout.startswith(CLAUDE_CODE_VERSION)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"Claude Code CLI unavailable in CI: {reason}")
    pytest.skip(f"Claude Code CLI unavailable: {reason}")


@pytest.fixture(scope="session")
def claude_bin() -> Path:
    folder = _install_dir()
    binary = folder / "node_modules" / ".bin" / "claude"
    if _installed(binary):
        return binary
    npm = shutil.which("npm")
    if npm is None:
        _unavailable("npm is not installed")
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [
            str(npm),
            "install",
            "--prefix",
            str(folder),
            "--no-audit",
            "--no-fund",
            f"@anthropic-ai/claude-code@{CLAUDE_CODE_VERSION}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0 or not _installed(binary):
        _unavailable(f"npm install failed: {done.stderr[-2000:]}")
    return binary
