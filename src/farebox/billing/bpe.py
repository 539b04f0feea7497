"""Token counters: our C extension for o200k_base and cl100k_base, else bpe_openai's Rust one.

o200k_base and cl100k_base are counted by `_bpecount` (src/farebox/billing/_bpecount.c, built
at install time by hatch_build.py): the same counts as bpe_openai's `count()`, from the same
rank files (`bpe_openai/data/*.tiktoken.gz`, checked against tiktoken's sha256), in 3.6 MB
and 1.9 MB of tables instead of 34 MB and 16 MB. When the extension was not built (no C
compiler at install time), or for another encoding (voyage3_base), the Rust extension counts,
loaded as follows.

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
import gzip
import hashlib
import importlib.machinery
import importlib.util
import logging
import sys
from pathlib import Path
from types import ModuleType
from typing import Protocol

MADV_DONTNEED = 4
_MODULE = "bpe_openai._bindings"
log = logging.getLogger(__name__)
# The rank files _bpecount reads, by the sha256 of their decompressed text (tiktoken_ext's
# `expected_hash`): split patterns and Unicode tables in the C code are those of these
# encodings, so a changed file means the Rust extension counts instead.
COMPACT_RANKS = {
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}


class Counter(Protocol):
    def count(self, text: str) -> int: ...


def compact_module() -> ModuleType | None:
    """The C extension, or None when it was not built (the install warned)."""
    try:
        from farebox.billing import _bpecount  # type: ignore[attr-defined]
    except ImportError:
        return None
    module: ModuleType = _bpecount
    return module


def rank_file(name: str) -> Path:
    """bpe_openai's rank file for an encoding (found without importing the package)."""
    package = importlib.util.find_spec("bpe_openai")
    if package is None or not package.submodule_search_locations:
        raise ImportError("bpe_openai is not installed")
    for folder in package.submodule_search_locations:
        path = Path(folder) / "data" / f"{name}.tiktoken.gz"
        if path.exists():
            return path
    raise FileNotFoundError(f"bpe_openai ships no rank file for {name}")


def compact_tokenizer(name: str) -> Counter | None:
    """The C counter for `name`, or None (not built, not an encoding it knows, or a rank file
    other than the one it was checked against)."""
    module = compact_module()
    expected = COMPACT_RANKS.get(name)
    if expected is None:
        return None
    if module is None:
        log.warning("farebox's C token counter was not built: counting %s with bpe_openai", name)
        return None
    ranks = gzip.decompress(rank_file(name).read_bytes())
    if hashlib.sha256(ranks).hexdigest() != expected:
        log.warning("bpe_openai's %s ranks changed: counting with its Rust extension", name)
        return None
    found: Counter = module.Encoder(ranks, name)
    return found


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


def tokenizer(name: str) -> Counter:
    """The named encoding's counter (ValueError for a name neither extension knows)."""
    compact = compact_tokenizer(name)
    if compact is not None:
        return compact
    return rust_tokenizer(name)


def rust_tokenizer(name: str) -> Counter:
    """bpe_openai's tokenizer for the encoding, its embedded data then released."""
    module = bindings()
    try:
        found: Counter = module.tokenizer_for_encoding(name)
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
