"""What a serving process does not carry: the optional heavy libraries (PyAV, Pillow, nostr-sdk),
the simulator and Alembic load only when something needs them, and what only some settings need
(redis without FAREBOX_REDIS_URL, psycopg on SQLite, Cashu's, pay per request's and the dev
wallet's libraries when they are off, Jinja2 before a dashboard page, cryptography before a key
is created or shown or an enclave's bundle verified, genai-prices, read in a child) is not
imported either (bench/memory.py measures the RSS this keeps off;
docs/performance/memory.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from farebox.db.database import Database
from farebox.db.migrate import at_head, heads_on_disk, upgrade_in_child

from support import database_url, require_db, run_python

NOT_AT_START = (
    *("av", "PIL", "nostr_sdk", "alembic", "mako", "farebox.sim", "bpe_openai.tokenizer"),
    *("redis", "psycopg", "genai_prices", "bolt11", "bitstring", "pymacaroons", "nacl"),
    *("pyhpke", "cbor2", "coincurve", "jinja2", "segno", "farebox.payments.devwallet"),
    *("cryptography",),
)


def test_a_built_gateway_has_not_imported_the_optional_libraries(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fb.db'}"
    upgrade_in_child(url)  # as `farebox serve` does, before it builds the app
    code = (
        "import sys\n"
        "import farebox.cli\n"
        "from farebox.app import create_app\n"
        "from farebox.catalog.loader import load_catalog\n"
        "from farebox.settings import Settings\n"
        f"settings = Settings(database_url={url!r})\n"
        "env = settings.extra_env\n"  # as `farebox serve` loads it
        "catalog = load_catalog(settings.catalog_path, env=env, costs_in_child=True)\n"
        "create_app(settings, catalog=catalog)\n"
        f"print(sorted(m for m in {NOT_AT_START!r} if m in sys.modules))\n"
    )
    out = run_python(code)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_migrating_in_a_child_process_brings_the_schema_to_head(kind: str, tmp_path: Path) -> None:
    require_db(kind)
    with database_url(kind, tmp_path) as url:
        db = Database(url, threads=1)
        try:
            assert not at_head(db.engine)  # a new database: no alembic_version yet
            upgrade_in_child(url)
            assert at_head(db.engine)
            with db.engine.connect() as conn:
                rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
            assert {row[0] for row in rows} == heads_on_disk()
            upgrade_in_child(url)  # at head: nothing to do
        finally:
            db.close()


def test_the_heads_read_from_the_files_are_alembics() -> None:
    from alembic.script import ScriptDirectory

    from farebox.db.migrate import alembic_config

    assert heads_on_disk() == frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def test_a_started_gateway_freezes_its_start_up_objects_and_collects_young_ones_rarely(
    tmp_path: Path,
) -> None:
    """gc.freeze() after start-up, and a first threshold that the requests in flight do not
    reach (app.YOUNG_OBJECTS_BEFORE_COLLECTION)."""
    url = f"sqlite:///{tmp_path / 'fb.db'}"
    upgrade_in_child(url)
    code = (
        "import gc\n"
        "from starlette.testclient import TestClient\n"
        "from farebox.app import YOUNG_OBJECTS_BEFORE_COLLECTION, create_app\n"
        "from farebox.catalog.loader import load_catalog\n"
        "from farebox.settings import Settings\n"
        f"settings = Settings(database_url={url!r})\n"
        "catalog = load_catalog(settings.catalog_path, env=settings.extra_env)\n"
        "before = gc.get_threshold()\n"
        "with TestClient(create_app(settings, catalog=catalog)):\n"
        "    after = gc.get_threshold()\n"
        "    frozen = gc.get_freeze_count()\n"
        "print(before[0], after[0] == YOUNG_OBJECTS_BEFORE_COLLECTION, after[1:] == before[1:],"
        " frozen > 10_000)\n"
    )
    out = run_python(code)
    assert out.stdout.strip().splitlines()[-1] == "700 True True True", out.stdout + out.stderr
