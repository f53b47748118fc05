"""Orders of the emulated account: statuses with their groups and the ``orders/history`` feed.

The status reference follows the official fixtures (analytics.md §B.2): codes grouped into
``new``, ``approval``, ``assembling``, ``delivery``, ``complete`` and ``cancel``. Every create
and status change appends a history entry with an increasing id, as the CRM does.
"""

from __future__ import annotations

import copy
from datetime import date, datetime
from typing import Any

JsonDict = dict[str, Any]

STATUSES: dict[str, tuple[str, str]] = {
    "new": ("Новый", "new"),
    "availability-confirmed": ("Наличие подтверждено", "approval"),
    "client-confirmed": ("Согласовано с клиентом", "approval"),
    "assembling": ("Комплектуется", "assembling"),
    "send-to-delivery": ("Передан в доставку", "delivery"),
    "complete": ("Выполнен", "complete"),
    "no-call": ("Недозвон", "cancel"),
    "no-product": ("Нет в наличии", "cancel"),
    "prices-did-not-suit": ("Не устроила цена", "cancel"),
    "cancel-other": ("Отменен", "cancel"),
}
"""Status code -> (name, status group code)."""


def statuses_reference() -> dict[str, JsonDict]:
    """``reference/statuses``: an object keyed by code, like ``reference/sites``."""
    return {
        code: {
            "code": code,
            "name": name,
            "active": True,
            "ordering": index,
            "group": group,
        }
        for index, (code, (name, group)) in enumerate(STATUSES.items(), start=1)
    }


def is_date(value: object) -> bool:
    """``Y-m-d`` as the order filters take it (``createdAtFrom``/``createdAtTo``)."""
    if not isinstance(value, str) or len(value) != 10:
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def created_between(order: JsonDict, since: str | None, until: str | None) -> bool:
    """Date filters compare the day of ``createdAt`` (inclusive on both ends)."""
    day = str(order["createdAt"])[:10]
    return (since is None or day >= since) and (until is None or day <= until)


def history_entry(id: int, order: JsonDict, when: datetime, **fields: Any) -> JsonDict:
    """One ``orders/history`` entry: a full order on create, a reference otherwise."""
    whole = fields.get("created") or fields.get("deleted")
    ref = {k: order[k] for k in ("id", "externalId", "number", "site") if k in order}
    return {
        "id": id,
        "createdAt": when.strftime("%Y-%m-%d %H:%M:%S"),
        "source": "api" if fields.pop("by_api", False) else "user",
        **fields,
        "order": copy.deepcopy(order) if whole else ref,
    }
