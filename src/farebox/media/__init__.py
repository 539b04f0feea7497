"""Generated media (images, videos) stored by farebox and served at HMAC-signed URLs."""
