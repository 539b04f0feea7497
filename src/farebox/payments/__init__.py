"""Money in: top-up invoices through payment backends, credited to the ledger exactly once."""
