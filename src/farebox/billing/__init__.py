"""Billing: what a request may cost (quote), holding it, metering output, settling the actual."""
