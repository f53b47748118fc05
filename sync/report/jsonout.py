"""``--format json``: the computation's document as is (names of design §7; null, never NaN)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


def render_json(reports: list[dict[str, Any]]) -> str:
    """One tenant -> its object; several -> ``{"tenants": [...]}`` (design §7.1)."""
    document: Any = reports[0] if len(reports) == 1 else {"tenants": reports}
    text = json.dumps(document, ensure_ascii=False, indent=2, allow_nan=False, default=_list)
    return text + "\n"


def _list(value: object) -> list[Any]:
    """Lazy sequences of the document (the lost list) are written as arrays."""
    if isinstance(value, Sequence):
        return list(value)
    raise TypeError(f"not JSON: {type(value).__name__}")
