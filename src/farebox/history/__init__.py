"""Query history: one row per paid request, written with its settlement (ledger/ops.py)."""
