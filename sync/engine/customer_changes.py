"""What one ``customers/history`` entry does to the phone -> customer map, as pure functions.

A leaf module: the store applies these changes and the refresh job derives them, and neither
needs the other to name them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class Change:
    """One edit of the map: add/remove a (phone, customer) pair, drop a customer, move one."""

    kind: Literal["add", "remove", "drop", "move"]
    customer_id: int
    phone: str = ""
    into: int = 0


Normalize = Callable[[str], str | None]


def phone_values(value: Any) -> list[str]:
    """Numbers in a history value: a string, ``{"number": …}``, or a list of either."""
    if value is None:
        return []
    if isinstance(value, list):
        return [n for item in value for n in phone_values(item)]
    if isinstance(value, dict):
        number = value.get("number")
        return [str(number)] if number else []
    return [str(value)] if str(value).strip() else []


def changes_from_entry(entry: dict[str, Any], normalize: Normalize) -> list[Change]:
    """What one ``customers/history`` entry does to the map (pure; unit-tested)."""
    customer = entry.get("customer") or {}
    try:
        customer_id = int(str(customer.get("id")))
    except (TypeError, ValueError):
        return []
    combined = entry.get("combinedTo") or {}
    if combined.get("id"):
        return [Change("move", customer_id, into=int(combined["id"]))]
    if entry.get("deleted"):
        return [Change("drop", customer_id)]
    changes: list[Change] = []
    if entry.get("created"):
        for raw in phone_values(customer.get("phones")):
            phone = normalize(raw)
            if phone:
                changes.append(Change("add", customer_id, phone))
        return changes
    if entry.get("field") == "phones":
        for raw in phone_values(entry.get("oldValue")):
            phone = normalize(raw)
            if phone:
                changes.append(Change("remove", customer_id, phone))
        for raw in phone_values(entry.get("newValue")):
            phone = normalize(raw)
            if phone:
                changes.append(Change("add", customer_id, phone))
    return changes
