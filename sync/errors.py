"""Describing a failure in one line, the same way everywhere (logs, ``last_error``, the CLI)."""

from __future__ import annotations


def first_line(exc: BaseException, *, with_type: bool = False) -> str:
    """The first line of an error's text; for a database error the driver's own message
    (``exc.orig``), without SQLAlchemy's statement dump and background link."""
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    name = type(exc).__name__
    if not lines:
        return name
    return f"{name}: {lines[0]}" if with_type else lines[0]
