"""`POST /v1/embeddings`: priced per input token, held before the upstream call."""
