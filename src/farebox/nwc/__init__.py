"""Nostr Wallet Connect (NIP-47) auto top-up: pay a Lightning invoice from the customer's wallet
when a settled request leaves the balance under their threshold."""
