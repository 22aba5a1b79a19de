"""channel layer."""
