"""bpe_openai's Rust tokenizers, loaded lean: the extension alone, tables only where used.

Importing the `bpe_openai` package decodes the rank tables of every encoding it ships into
Python dicts (about 65 MB and 1.5 s of CPU for three tables), which its Rust extension never
reads: the extension carries its own tables, built per encoding on first use from data embedded
in the library. So the gateway loads `bpe_openai._bindings` by itself and counts with its
`count()` (no list of token ids either). Once an encoding is built, the pages of embedded data
it was built from are handed back to the kernel (`MADV_DONTNEED` on the library's read-only
data segment: clean file pages, read again from the file if ever touched), so a process keeps
only the tables it counts with: about 34 MB for o200k_base and 16 MB for cl100k_base, instead
of those plus 46 MB of embedded data plus 65 MB of Python dicts.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Protocol

MADV_DONTNEED = 4
_MODULE = "bpe_openai._bindings"


class RustTokenizer(Protocol):
    def count(self, text: str) -> int: ...

    def encode(self, text: str) -> list[int]: ...


def bindings() -> ModuleType:
    """The extension module, without running the `bpe_openai` package's own `__init__` (the
    same module object if something already imported the package: the simulator does)."""
    loaded = sys.modules.get(_MODULE)
    if loaded is not None:
        return loaded
    package = importlib.util.find_spec("bpe_openai")
    if package is None or not package.submodule_search_locations:
        raise ImportError("bpe_openai is not installed")
    for folder in package.submodule_search_locations:
        for path in sorted(Path(folder).glob("_bindings*")):
            if path.suffix in (".so", ".pyd"):
                loader = importlib.machinery.ExtensionFileLoader(_MODULE, str(path))
                spec = importlib.util.spec_from_file_location(_MODULE, path, loader=loader)
                assert spec is not None
                module = importlib.util.module_from_spec(spec)
                loader.exec_module(module)
                sys.modules[_MODULE] = module  # the package, if imported later, reuses it
                return module
    raise ImportError("bpe_openai's extension module is missing")


def tokenizer(name: str) -> RustTokenizer:
    """The named encoding's tokenizer (ValueError for a name the extension does not know)."""
    module = bindings()
    try:
        found: RustTokenizer = module.tokenizer_for_encoding(name)
    except Exception as exc:  # pyo3 raises ValueError or RuntimeError for unknown names
        raise ValueError(f"unknown encoding {name!r}") from exc
    release_embedded_data(module)
    return found


def release_embedded_data(module: ModuleType) -> int:
    """Drop the resident pages of the extension's first read-only segment (headers, symbol
    tables and the embedded tables it has now built from). Linux only; returns the bytes
    released (0 elsewhere or when nothing matched). Never touches a written or executable page:
    only the `r--p` mapping at offset 0 of the library file."""
    path = getattr(module, "__file__", None)
    maps = Path("/proc/self/maps")
    if path is None or not maps.exists():
        return 0
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return 0
    libc = ctypes.CDLL(libc_name, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    real = str(Path(path).resolve())
    released = 0
    for line in maps.read_text().splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) < 6 or fields[5] != real or fields[1] != "r--p" or int(fields[2], 16):
            continue
        start, end = (int(x, 16) for x in fields[0].split("-"))
        if libc.madvise(start, end - start, MADV_DONTNEED) == 0:
            released += end - start
    return released
