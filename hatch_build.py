"""Build hook: compile src/farebox/billing/_bpecount.c (the compact token counter) with the
system C compiler, for wheels and for editable installs (`pip install -e .`) alike.

The compiled module is written next to its source, where an editable install imports it from,
and is added to a wheel as an artifact. Without a working compiler (or Python's headers) the
install still succeeds, with a warning: farebox then counts tokens with bpe_openai's Rust
extension (billing/bpe.py), which needs about 44 MB more per process.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import sysconfig
import warnings
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = Path("src/farebox/billing/_bpecount.c")


def compile_extension(root: Path) -> Path | None:
    """Compile the extension in place; its path, or None (after a warning) when it failed."""
    source = root / SOURCE
    target = source.with_name("_bpecount" + (sysconfig.get_config_var("EXT_SUFFIX") or ".so"))
    target.unlink(missing_ok=True)  # never leave a stale build behind a failed one
    compiler = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    command = [
        *compiler,
        "-O2",
        "-fPIC",
        "-shared",
        "-std=c99",
        "-Wall",
        "-I" + sysconfig.get_paths()["include"],
        str(source),
        "-o",
        str(target),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as exc:
        failure = str(exc)
    else:
        if done.returncode == 0 and target.exists():
            return target
        failure = (done.stderr or done.stdout).strip()[-2000:]
    message = (
        f"farebox: could not compile {SOURCE} ({failure}); tokens will be counted with "
        "bpe_openai's Rust extension instead (about 44 MB more per process)"
    )
    warnings.warn(message, stacklevel=1)
    print("WARNING: " + message, file=sys.stderr)
    return None


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        built = compile_extension(Path(self.root))
        if built is None or version == "editable":
            return  # an editable install imports it from src/
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        build_data["force_include"][str(built)] = str(built.relative_to(Path(self.root) / "src"))
