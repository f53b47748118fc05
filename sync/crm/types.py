"""Typed results of the RetailCRM client; ``raw`` keeps the whole answer where it has more."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

JsonDict = dict[str, Any]
T = TypeVar("T")


@dataclass(frozen=True)
class Credentials:
    """``GET /api/credentials``: what the key may do (spec §8.5)."""

    scopes: tuple[str, ...]
    site_access: str
    """``access_full`` or ``access_selective``."""
    sites_available: tuple[str, ...]
    raw: JsonDict = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class ModuleEditInfo:
    """``info`` of an integration module edit: ids and shop codes the CRM does not know."""

    not_exist_user_ids: tuple[int, ...]
    not_exist_site_codes: tuple[str, ...]
    raw: JsonDict = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class UploadResult:
    """``telephony/calls/upload``: newly stored calls, and the ``externalId`` of known ones."""

    processed: int
    duplicates: tuple[str, ...]


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a paged list, with the CRM's ``pagination`` block."""

    items: tuple[T, ...]
    current_page: int
    total_pages: int
    total_count: int
    limit: int

    @property
    def is_last(self) -> bool:
        return not self.items or self.current_page >= self.total_pages


@dataclass(frozen=True)
class HistoryPage:
    """A page of ``customers/history``; ``last_id`` is the cursor to persist once applied."""

    entries: tuple[JsonDict, ...]
    last_id: int
