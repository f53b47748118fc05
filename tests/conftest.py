"""Shared fixtures: real databases per test, and what to do when a server is missing.

PostgreSQL: one template database is migrated per session, and each test gets a copy
(``CREATE DATABASE ... TEMPLATE``), which is fast and leaves nothing shared between tests.
MariaDB: a fresh database per test. Outside CI a missing server skips the test with a hint;
with ``CI=true`` it is an error, so a green CI always means the tests ran.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from typing import NoReturn

import pytest
import sqlalchemy as sa
from loguru import logger
from sqlalchemy.engine import make_url

from sync import db

pytest_plugins = ["tests.crm_fixtures"]  # the `emulator` and `crm` fixtures

PG_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
MYSQL_URL = os.environ.get("TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(autouse=True)
def _logs_outlive_no_test() -> Iterator[None]:
    """A command run in-process (``main([...])``) points loguru at that test's captured
    stderr, which pytest closes when the test ends; a thread of a later test that logs there
    prints "Logging error … I/O operation on closed file". Every test ends with loguru on the
    process's own stderr, warnings only."""
    yield
    logger.remove()
    if sys.__stderr__ is not None:
        logger.add(sys.__stderr__, level="WARNING")


def missing(message: str) -> NoReturn:
    """Something a test needs is not here: a skip on a laptop, a failure in CI (``CI=true``)."""
    if not IN_CI:
        pytest.skip(message)
    pytest.fail(message, pytrace=False)


def service_missing(what: str, hint: str, error: Exception) -> NoReturn:
    missing(f"{what} is not reachable ({type(error).__name__}: {error}); {hint}")


def _admin(url: str) -> sa.Engine:
    return sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[sa.Engine]:
    engine = _admin(PG_URL)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except Exception as exc:
        service_missing(
            "PostgreSQL",
            "start it (pg_ctlcluster 15 main start) or set TEST_DATABASE_URL",
            exc,
        )
    yield engine
    engine.dispose()


def _pg_create(admin: sa.Engine, name: str, template: str | None = None) -> str:
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        suffix = f' TEMPLATE "{template}"' if template else ""
        conn.execute(sa.text(f'CREATE DATABASE "{name}"{suffix}'))
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


def _pg_drop(admin: sa.Engine, name: str) -> None:
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def pg_template(pg_admin: sa.Engine) -> Iterator[str]:
    name = f"rcs_tmpl_{os.getpid()}"
    url = _pg_create(pg_admin, name)
    engine = db.make_engine(url, poolclass=sa.pool.NullPool)
    db.upgrade(engine)
    engine.dispose()
    yield name
    _pg_drop(pg_admin, name)


@pytest.fixture
def pg_url(pg_admin: sa.Engine, pg_template: str) -> Iterator[str]:
    """A migrated PostgreSQL database of its own for this test."""
    name = f"rcs_{uuid.uuid4().hex[:12]}"
    url = _pg_create(pg_admin, name, template=pg_template)
    yield url
    _pg_drop(pg_admin, name)


@pytest.fixture
def pg_empty_url(pg_admin: sa.Engine) -> Iterator[str]:
    """An empty PostgreSQL database (no tables) for this test."""
    name = f"rcs_{uuid.uuid4().hex[:12]}"
    url = _pg_create(pg_admin, name)
    yield url
    _pg_drop(pg_admin, name)


@pytest.fixture(scope="session")
def mysql_admin() -> Iterator[sa.Engine]:
    engine = _admin(MYSQL_URL)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except Exception as exc:
        service_missing(
            "MariaDB",
            "start it (start-stop-daemon --start --background --exec /usr/sbin/mariadbd) "
            "or set TEST_MYSQL_URL",
            exc,
        )
    yield engine
    engine.dispose()


@pytest.fixture
def mysql_url(mysql_admin: sa.Engine) -> Iterator[str]:
    """An empty MariaDB database of its own for this test."""
    name = f"rcs_{uuid.uuid4().hex[:12]}"
    with mysql_admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    yield make_url(MYSQL_URL).set(database=name).render_as_string(hide_password=False)
    with mysql_admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))


@pytest.fixture
def sqlite_url(tmp_path: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path}/sync.db"
