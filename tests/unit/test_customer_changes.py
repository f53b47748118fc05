"""customers/history entries -> map edits (spec §7.5), pure."""

from __future__ import annotations

from sync.engine.customer_changes import Change, changes_from_entry, phone_values


def norm(raw: str) -> str | None:
    digits = "".join(ch for ch in raw if ch.isdigit())
    return "+375" + digits[-9:] if len(digits) >= 9 else None


def test_create_adds_every_phone() -> None:
    entry = {
        "created": True,
        "field": "id",
        "customer": {
            "id": 7,
            "phones": [
                {"number": "8 029 123-45-67"},
                {"number": "+375 44 765 43 21"},
                {"number": "12"},
            ],
        },
    }
    assert changes_from_entry(entry, norm) == [
        Change("add", 7, "+375291234567"),
        Change("add", 7, "+375447654321"),
    ]


def test_phone_change_removes_old_and_adds_new() -> None:
    entry = {
        "field": "phones",
        "customer": {"id": 7},
        "oldValue": "80291234567",
        "newValue": {"number": "80297654321"},
    }
    assert changes_from_entry(entry, norm) == [
        Change("remove", 7, "+375291234567"),
        Change("add", 7, "+375297654321"),
    ]


def test_delete_and_merge() -> None:
    assert changes_from_entry({"deleted": True, "customer": {"id": 3}}, norm) == [Change("drop", 3)]
    merged = {"deleted": True, "customer": {"id": 3}, "combinedTo": {"id": 9}}
    assert changes_from_entry(merged, norm) == [Change("move", 3, into=9)]


def test_other_fields_and_garbage_change_nothing() -> None:
    assert changes_from_entry({"field": "manager", "customer": {"id": 3}}, norm) == []
    assert changes_from_entry({"field": "phones", "customer": {"id": "x"}}, norm) == []
    assert changes_from_entry({}, norm) == []


def test_phone_values_shapes() -> None:
    assert phone_values(None) == [] and phone_values("  ") == []
    assert phone_values([{"number": "1"}, "2", {"x": 1}]) == ["1", "2"]
