"""Keyless local models (the optional `farebox[local]` extra): embeddings from a model shipped
inside a PyPI package, transcription with pocketsphinx, speech with espeak-ng. Nothing is
fetched at run time; the heavy imports happen when a model is first used."""
