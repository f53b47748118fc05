"""Click-to-call rules C1, C4, C5, C6 and C7 as pure functions and one small in-memory table.

Nothing here does I/O: the HTTP handler asks these functions what to do and then does it, so
every decision is unit-tested without a socket.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

from sync.bridge.dialing import Refusal
from sync.config import OriginateSettings

CLICK_ID_PREFIX = "c2c-"


def new_click_id() -> str:
    """C4: ``c2c-`` + 24 hex = 28 characters, inside the 32 of FreePBX's ``linkedid`` column."""
    return CLICK_ID_PREFIX + secrets.token_hex(12)


def check_caller(extensions: Mapping[str, int], code: str, user_id: str) -> Refusal | None:
    """C1: ``code`` must be one of the tenant's extensions and belong to ``userId`` if given."""
    if not code or code not in extensions:
        return Refusal(403, "code is not an extension of this account")
    if user_id and user_id != str(extensions[code]):
        return Refusal(403, "code does not belong to this user")
    return None


class Dedup:
    """C5: the same (tenant, code, number) within ``window`` seconds is one click.

    Only the clicks of the last ``window`` are kept: each click first forgets the expired ones
    (the oldest come first, the window being fixed), so the table never holds more than one
    window's clicks, and a click costs the same however many came before it.
    """

    def __init__(self, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.clock = clock
        self._seen: dict[tuple[str, str, str], float] = {}
        """(tenant, code, number) → until when a repeat is a duplicate, oldest first."""

    def __len__(self) -> int:
        return len(self._seen)

    def first(self, tenant: str, code: str, e164: str) -> bool:
        """True for a new click (and remember it); False for a repeat inside the window."""
        now = self.clock()
        seen = self._seen
        while seen:
            oldest = next(iter(seen))
            if seen[oldest] > now:
                break
            del seen[oldest]
        key = (tenant, code, e164)
        if key in seen:
            return False
        seen[key] = now + self.window
        return True

    def forget(self, tenant: str, code: str, e164: str) -> None:
        """A click the PBX refused may be tried again at once."""
        self._seen.pop((tenant, code, e164), None)


def _fill(template: str, **values: str) -> str:
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


def originate_fields(
    settings: OriginateSettings,
    *,
    extension: str,
    dial: str,
    e164: str,
    click_id: str,
) -> dict[str, str]:
    """C4: the headers of the ``Originate`` action (``ActionID`` is added by the client)."""
    fields = {
        "Channel": _fill(settings.channel, extension=extension),
        "Context": settings.context,
        "Exten": dial,
        "Priority": "1",
        "CallerID": _fill(settings.caller_id, phone=e164, extension=extension),
        "Timeout": str(settings.timeout_seconds * 1000),
        "Async": "true",
        "ChannelId": click_id,
    }
    for name, value in fields.items():
        if any(c in value for c in "\r\n"):  # the config validator rejects this already
            raise ValueError(f"originate {name} would span lines")
    return fields


def http_originate_url(settings: OriginateSettings, *, extension: str, dial: str, e164: str) -> str:
    """C7: ``http_url`` with every placeholder filled, each value URL-quoted."""
    return _fill(
        settings.http_url,
        extension=quote(extension, safe=""),
        number=quote(dial, safe=""),
        phone=quote(e164, safe=""),
        secret=quote(settings.http_secret.reveal(), safe=""),
    )


ORIGINATE_REASONS = {4: "answered", 5: "busy", 3: "no_answer", 1: "no_answer", 8: "failed"}


def originate_reason(success: bool, reason: str) -> str:
    """C6: ``OriginateResponse`` → answered | busy | no_answer | failed (metric label)."""
    if success:
        return "answered"
    try:
        code = int(reason)
    except ValueError:
        return "failed"
    return ORIGINATE_REASONS.get(code, "failed")


@dataclass(frozen=True, slots=True)
class Click:
    """One click as the handler decided it, kept until its ``OriginateResponse``."""

    click_id: str
    tenant: str
    extension: str
    e164: str
