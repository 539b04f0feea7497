"""farebox's SQLite engine registers pass-through adapters for None and bytes (db/database.py,
so sqlite3 skips a failed attribute lookup per NULL or blob parameter): they must still be
stored as NULL and BLOB, and other types as before."""

from __future__ import annotations

from pathlib import Path

from farebox.db.database import Database


def test_nulls_and_blobs_are_stored_as_before(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'bind.db'}", threads=1)
    try:
        with db.engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (a, b, c, d)")
            conn.exec_driver_sql(
                "INSERT INTO t VALUES (?, ?, ?, ?)",
                [(None, b"\x00\xff", 7, "x"), (None, b"", 1.5, None)],
            )
            rows = conn.exec_driver_sql(
                "SELECT a, b, c, d, typeof(a), typeof(b), typeof(c) FROM t ORDER BY rowid"
            ).all()
    finally:
        db.close()
    assert [tuple(r) for r in rows] == [
        (None, b"\x00\xff", 7, "x", "null", "blob", "integer"),
        (None, b"", 1.5, None, "null", "blob", "real"),
    ]
