"""Models and migrations agree on every supported database (autogenerate finds no diff)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from models import Base
from sync import db

pytestmark = pytest.mark.integration


def _diff(url: str) -> list[object]:
    engine = db.make_engine(url, poolclass=sa.pool.NullPool)
    try:
        db.upgrade(engine)
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(ctx, Base.metadata))
    finally:
        engine.dispose()


def test_postgresql_migrations_match_models(pg_empty_url: str) -> None:
    assert _diff(pg_empty_url) == []


def test_sqlite_migrations_match_models(sqlite_url: str) -> None:
    assert _diff(sqlite_url) == []


def test_upgrade_is_idempotent_and_reports_head(sqlite_url: str) -> None:
    engine = db.make_engine(sqlite_url)
    assert db.revisions(engine)[0] is None
    db.upgrade(engine)
    db.upgrade(engine)
    current, head = db.revisions(engine)
    assert current == head is not None
    tables = set(sa.inspect(engine).get_table_names())
    assert {"sync_tenant", "call_sync", "retailcrm_customers", "sync_run"} <= tables
