"""farebox: a self-hostable pay-per-query AI API."""

__version__ = "0.1.0"
