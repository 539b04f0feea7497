"""Provider adapters: one small port per upstream wire format (httpx's transport is the model)."""
