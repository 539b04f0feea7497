"""Cashu ecash as a way to pay per request (NUT-24): the payer sends a `cashuB` token in
`X-Cashu`, farebox swaps its proofs at a trusted mint for proofs of its own (stored encrypted),
credits their value to the token's own ledger account, serves the request from it like any
paid credential, and hands back what the request did not use as a `cashuB` change token.
The operator melts the ecash it keeps to its Lightning backend (`farebox admin cashu`).

Modules: crypto.py (blind signatures on secp256k1), tokens.py (cashuB tokens and creqA payment
requests), denominations.py (output amounts that can make any change), mint.py (the mint's HTTP
API), store.py (receipts and the ledger side), service.py (the flow), melt.py (to Lightning).
"""
