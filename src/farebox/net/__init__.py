"""Outbound fetches on a customer's behalf, guarded against SSRF."""
