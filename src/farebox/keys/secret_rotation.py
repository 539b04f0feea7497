"""Re-encrypting what the instance secret protects under a new secret, in one transaction.

What is encrypted: API keys (`api_keys.key_encrypted`, for `show_key`), NWC connection
strings (`nwc_connections.uri_encrypted`) and the operator's Cashu ecash with the change tokens
kept for payers (`cashu_receipts.vault`, `cashu_receipts.change_token`). What is derived and simply changes with the secret:
media URL signatures (URLs already handed out stop working; they lived 24 h anyway), the keys of
pay-per-request challenges and credentials (macaroons, Payment challenges) and the dev wallet's
node key. The database's fingerprint of the secret moves to the new one in the same
transaction, so a process still holding the old secret refuses to start afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Column, Connection, Table, select, update

from farebox.db.schema import api_keys, cashu_receipts, nwc_connections
from farebox.keys.instance_secret import fingerprint, set_fingerprint
from farebox.keys.secrets import KeyCipher


@dataclass(frozen=True, slots=True)
class RotationReport:
    api_keys: int
    nwc_connections: int
    undecryptable: int
    cashu_receipts: int = 0  # rows the old secret could not decrypt either: left as they were


def _reencrypt_column(
    conn: Connection,
    table: Table,
    key: Column[str],
    column: Column[str],
    old: KeyCipher,
    new: KeyCipher,
) -> tuple[int, int]:
    done = failed = 0
    for row_key, token in conn.execute(select(key, column).where(column.is_not(None))).fetchall():
        try:
            plain = old.decrypt(token)
        except ValueError:
            failed += 1
            continue
        conn.execute(update(table).where(key == row_key).values({column.name: new.encrypt(plain)}))
        done += 1
    return done, failed


def reencrypt_all(conn: Connection, old_secret: str, new_secret: str) -> RotationReport:
    old, new = KeyCipher(old_secret), KeyCipher(new_secret)
    keys, bad_keys = _reencrypt_column(
        conn, api_keys, api_keys.c.id, api_keys.c.key_encrypted, old, new
    )
    nwc, bad_nwc = _reencrypt_column(
        conn,
        nwc_connections,
        nwc_connections.c.account_id,
        nwc_connections.c.uri_encrypted,
        old,
        new,
    )
    ecash, bad_ecash = _reencrypt_column(
        conn, cashu_receipts, cashu_receipts.c.id, cashu_receipts.c.vault, old, new
    )
    _change, bad_change = _reencrypt_column(
        conn, cashu_receipts, cashu_receipts.c.id, cashu_receipts.c.change_token, old, new
    )
    set_fingerprint(conn, fingerprint(new_secret))
    return RotationReport(keys, nwc, bad_keys + bad_nwc + bad_ecash + bad_change, ecash)
