"""The real Claude Code CLI (npm @anthropic-ai/claude-code, pinned), installed once per machine.

`.ci/run` installs it into `.cache/claude-code` (npm, about 400 MB); a test run never downloads
it: without it these tests skip, saying how to install it, and fail under CI=true. Set
FAREBOX_CLAUDE_CODE_DIR to use another folder.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest

from support import missing_tool

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


def _unavailable(reason: str) -> NoReturn:
    missing_tool(f"Claude Code CLI unavailable: {reason}")


@pytest.fixture(scope="session")
def claude_bin() -> Path:
    folder = _install_dir()
    binary = folder / "node_modules" / ".bin" / "claude"
    if not _installed(binary):
        _unavailable(
            f"not installed in {folder}: .ci/run installs it (npm install --prefix {folder} "
            f"@anthropic-ai/claude-code@{CLAUDE_CODE_VERSION}, about 400 MB)"
        )
    return binary
