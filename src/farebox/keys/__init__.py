"""API keys and customer accounts: creation, lookup by hash, encryption at rest, limits."""
