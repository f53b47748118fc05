"""Tenants from a table (``[tenants_directory]``), merged with ``[[tenants]]``.

A hosted PBX keeps its enterprises in its own database; the configured ``query`` returns one
row per tenant with columns named like the ``[[tenants]]`` keys. Each row is checked by the same
code as a ``[[tenants]]`` table (``config.tenant_from_row``), after ``[tenant_defaults]`` filled
what it leaves out. A bad row skips that tenant with a reason that names the row and the key,
never the value of a secret; the other rows are unaffected. ``api_key_encrypted`` is a Fernet
token made with the key in ``key_file`` (``retailcrm-sync keys encrypt``).

A name both in the file and in the directory: the file wins (said once per name and process).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken
from loguru import logger
from sqlalchemy.exc import SQLAlchemyError

from sync import config, db
from sync.config import TENANT_KEYS, Secret, Settings, TenantSettings, tenant_from_row
from sync.errors import first_line

ROW_KEYS = (*TENANT_KEYS, "api_key_encrypted")


class DirectoryError(Exception):
    """The directory as a whole cannot be read (database down, bad query): one line."""


@dataclass(frozen=True)
class Rows:
    """The outcome of one reading: the tenants of the good rows, a reason per bad row."""

    tenants: tuple[TenantSettings, ...]
    skipped: tuple[str, ...]


def read_rows(url: str, query: str) -> list[dict[str, Any]]:
    """Run the operator's query; each row as a dict of column -> value."""
    engine = db.make_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return [dict(row) for row in conn.execute(sa.text(query)).mappings()]
    except SQLAlchemyError as exc:
        where = sa.engine.make_url(url).render_as_string(hide_password=True)
        raise DirectoryError(f"tenants directory {where}: {first_line(exc)}") from None
    finally:
        engine.dispose()


def row_data(row: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """A database row as the values a ``[[tenants]]`` table would hold (pure).

    NULL means "not set" (defaults apply); ``extensions`` is JSON text (or a JSON column);
    numbers of any SQL type become int or float; 0/1 become false/true for ``create_customers``.
    Returns the data and the (key, reason) problems found on the way.
    """
    data: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for key, value in row.items():
        if value is None:
            continue
        if isinstance(value, Decimal):
            value = int(value) if value == value.to_integral_value() else float(value)
        if key in ("extensions", "external_phones") and isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except ValueError:
                problems.append((key, 'not JSON text (e.g. {"151": 16})'))
                continue
        if key == "create_customers" and isinstance(value, int) and not isinstance(value, bool):
            value = bool(value)
        data[key] = value
    return data, problems


def decrypt(token: str, key: Secret | None) -> Secret:
    """An ``api_key_encrypted`` value; ValueError with the reason (never the token)."""
    if key is None:
        raise ValueError("needs [tenants_directory] key_file to decrypt it")
    try:
        return Secret(Fernet(key.reveal().encode("ascii")).decrypt(token.encode()).decode())
    except (InvalidToken, ValueError, UnicodeError):
        raise ValueError(
            "cannot be decrypted with key_file (another key, or a damaged token)"
        ) from None


def parse_rows(
    settings: Settings, rows: Sequence[Mapping[str, Any]], environ: Mapping[str, str]
) -> Rows:
    """Every row checked on its own; names taken by ``[[tenants]]`` are the file's (pure but
    for reading ``api_key_file``/``key_file`` as the file's tenants do)."""
    directory = settings.directory
    assert directory is not None
    tenants: list[TenantSettings] = []
    skipped: list[str] = []
    seen: set[str] = set()
    several = len(rows) + len(settings.tenants) > 1
    for index, row in enumerate(rows, start=1):
        name = row.get("name")
        where = f"tenants_directory[row {index}" + (
            f" {name!r}]" if isinstance(name, str) and name.isprintable() else "]"
        )
        tenant, reasons = _one(settings, where, row, environ)
        if tenant is not None and several and tenant.match is None:
            reasons.append(f"{where}.match: required when there are several tenants")
        if tenant is not None and tenant.match is not None and not settings.source.tenant_column:
            reasons.append(f"{where}.match: needs source.tenant_column")
        if tenant is not None and tenant.name in seen:
            reasons.append(f"{where}.name: duplicate tenant name {tenant.name!r}")
        if tenant is None or reasons:
            skipped.append("; ".join(reasons) or f"{where}: invalid")
            continue
        seen.add(tenant.name)
        tenants.append(tenant)
    return Rows(tuple(tenants), tuple(skipped))


def _one(
    settings: Settings, where: str, row: Mapping[str, Any], environ: Mapping[str, str]
) -> tuple[TenantSettings | None, list[str]]:
    assert settings.directory is not None
    data, problems = row_data(row)
    reasons = [f"{settings.path}: {where}.{key}: {reason}" for key, reason in problems]
    key: Secret | None = None
    plain, token = data.pop("api_key", None), data.pop("api_key_encrypted", None)
    if plain is not None and token is not None:
        reasons.append(f"{settings.path}: {where}.api_key: set api_key or api_key_encrypted")
    elif token is not None:
        try:
            key = decrypt(str(token), settings.directory.key)
        except ValueError as exc:
            reasons.append(f"{settings.path}: {where}.api_key_encrypted: {exc}")
    elif plain is not None:
        key = Secret(str(plain).strip())
        if not key.reveal():
            reasons.append(f"{settings.path}: {where}.api_key: must not be empty")
    if reasons:
        return None, reasons
    tenant, found = tenant_from_row(
        settings.path, where, data, key, settings.tenant_defaults, environ
    )
    return tenant, found


_said: set[str] = set()
_said_lock = threading.Lock()


def merged(settings: Settings, rows: Rows) -> Settings:
    """``settings`` with the directory's tenants after the file's; the file wins a name."""
    mine = {t.name for t in settings.tenants}
    taken = sorted({t.name for t in rows.tenants} & mine)
    with _said_lock:
        fresh = [n for n in taken if n not in _said]
        _said.update(fresh)
    for name in fresh:
        logger.info(f"tenant {name}: in the config file and the directory; the file's is used")
    extra = tuple(t for t in rows.tenants if t.name not in mine)
    return replace(settings, tenants=settings.tenants + extra, skipped=rows.skipped)


def load_settings(path: Path, environ: Mapping[str, str]) -> Settings:
    """The config file and its directory; raises ``ConfigError`` or ``DirectoryError``."""
    return with_directory(config.load(path, environ), environ)


def with_directory(settings: Settings, environ: Mapping[str, str]) -> Settings:
    """Read the directory (when configured) and merge it; raises ``DirectoryError``."""
    if settings.directory is None:
        return settings
    rows = parse_rows(
        settings, read_rows(settings.directory.url, settings.directory.query), environ
    )
    for reason in rows.skipped:
        logger.warning(f"tenant skipped: {reason}")
    return merged(settings, rows)
