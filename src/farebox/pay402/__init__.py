"""Pay per request with no account: HTTP 402 challenges (L402, the Payment scheme) answered by a
Lightning payment, credited once to its own ledger account and spent by the request it priced.
See service.py for the flow and store.py for the ledger side."""
