"""Read-only access to the PBX call log (PostgreSQL, MySQL/MariaDB, SQLite).

``open_source`` reflects the configured table once and returns the reader for its flavor:
``LegSource`` (``asterisk``/``freepbx``: CDR legs) or ``CallSource`` (``calls``: one row a
call). Both page a time window through the index on the time column; see docs/sources.md.
"""

from __future__ import annotations

from typing import TypeAlias

import sqlalchemy as sa

from sync.settings import SourceSettings
from sync.sources.calls_reader import CallSource
from sync.sources.reader import LegSource, leg_sort_key
from sync.sources.schema import Layout, SourceError, TimeCodec

Source: TypeAlias = LegSource | CallSource

__all__ = [
    "CallSource",
    "Layout",
    "LegSource",
    "Source",
    "SourceError",
    "TimeCodec",
    "leg_sort_key",
    "open_source",
]


def open_source(settings: SourceSettings, engine: sa.Engine | None = None) -> Source:
    """The reader for ``settings.flavor``; raises ``SourceError`` naming table and column.

    Without ``engine`` one is created from ``settings.url`` and disposed by ``close()``.
    """
    from sync.sources.schema import reflect

    owns = engine is None
    if engine is None:
        engine = _engine(settings.url)
    try:
        layout = reflect(engine, settings)
    except BaseException:
        if owns:
            engine.dispose()
        raise
    if layout.shape == "calls":
        return CallSource(settings, layout, engine, owns_engine=owns)
    return LegSource(settings, layout, engine, owns_engine=owns)


def _engine(url: str) -> sa.Engine:
    """An engine for the PBX database. SQLite files are opened without ``sync.db``'s WAL and
    synchronous pragmas: the journal mode persists in the file, and the PBX's file is not ours
    to change."""
    from sqlalchemy.engine import make_url

    from sync.db import make_engine

    if make_url(url).get_backend_name() == "sqlite":
        return sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
    return make_engine(url)
