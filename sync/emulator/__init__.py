"""A RetailCRM API v5 emulator for tests, the demo and manual runs (spec §10)."""

from sync.emulator.faults import BodyKind
from sync.emulator.server import Emulator, RecordedRequest, run_standalone
from sync.emulator.state import ALL_SCOPES, KeyConfig
from sync.emulator.validation import validate_calls

__all__ = [
    "ALL_SCOPES",
    "BodyKind",
    "Emulator",
    "KeyConfig",
    "RecordedRequest",
    "run_standalone",
    "validate_calls",
]
