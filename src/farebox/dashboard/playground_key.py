"""The API key the playground bills: one ordinary key per account, made on first use.

It is listed with the account's other keys (marked "playground"), so the customer sees what the
playground spent and can give it a limit or revoke it; a revoked or expired one is replaced by a
new key on the next playground request. The page's script never sees it: the server looks it up
by the session's account.
"""

from __future__ import annotations

from sqlalchemy import Connection, insert, select, update

from farebox.db.database import Database
from farebox.db.schema import accounts, api_keys, dashboard_keys
from farebox.errors import Conflict
from farebox.keys.secrets import KeyCipher
from farebox.keys.store import ApiKey, KeyStore, insert_key

NAMES = ("playground", *(f"playground-{n}" for n in range(2, 10)))


def _key_id(conn: Connection, account_id: str) -> str | None:
    row = conn.execute(
        select(dashboard_keys.c.key_id).where(dashboard_keys.c.account_id == account_id)
    ).first()
    return None if row is None else str(row[0])


def _ensure(conn: Connection, cipher: KeyCipher, account_id: str, now: float) -> str:
    """The live playground key's id, made now if there is none (one transaction, the account's
    row locked first, so two first requests make one key)."""
    conn.execute(select(accounts.c.id).where(accounts.c.id == account_id).with_for_update())
    current = _key_id(conn, account_id)
    if current is not None:
        row = conn.execute(
            select(api_keys.c.revoked_at, api_keys.c.expire_at).where(api_keys.c.id == current)
        ).first()
        if row is not None and row.revoked_at is None and (row.expire_at or now + 1) > now:
            return current
    for name in NAMES:
        try:
            key, _raw = insert_key(conn, cipher, account_id, name, None, None, None)
            break
        except Conflict:
            continue  # the customer has a key of that name
    else:
        raise Conflict("Rename one of your keys named playground…: the playground needs a name.")
    if current is None:
        conn.execute(insert(dashboard_keys).values(account_id=account_id, key_id=key.id))
    else:
        conn.execute(
            update(dashboard_keys)
            .where(dashboard_keys.c.account_id == account_id)
            .values(key_id=key.id)
        )
    return key.id


async def key_id(db: Database, account_id: str) -> str | None:
    return await db.read(_key_id, account_id)


async def playground_key(store: KeyStore, account_id: str, now: float) -> ApiKey:
    """The account's live playground key (made now if needed), read fresh."""
    found = await store.db.write(_ensure, store.cipher, account_id, now)
    return await store.reload(found, account_id)
