"""Image generation and edits: validated per model from the catalog, priced per image."""
