"""Per-key rate limits (requests and tokens per minute) and model scopes, checked at admission."""
