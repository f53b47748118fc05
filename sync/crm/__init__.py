"""RetailCRM API client: typed methods, error classes, shared per-key rate limits."""

from sync.crm.client import RetailCRMClient, encode_form, encode_query
from sync.crm.errors import (
    AccountNotFoundError,
    AuthError,
    CRMError,
    FatalError,
    NotFoundError,
    RateLimitedError,
    RetriableError,
    ServerError,
    TransportError,
    UnexpectedResponseError,
    ValidationError,
)
from sync.crm.types import Credentials, HistoryPage, ModuleEditInfo, Page, UploadResult

__all__ = [
    "AccountNotFoundError",
    "AuthError",
    "CRMError",
    "Credentials",
    "FatalError",
    "HistoryPage",
    "ModuleEditInfo",
    "NotFoundError",
    "Page",
    "RateLimitedError",
    "RetailCRMClient",
    "RetriableError",
    "ServerError",
    "TransportError",
    "UnexpectedResponseError",
    "UploadResult",
    "ValidationError",
    "encode_form",
    "encode_query",
]
