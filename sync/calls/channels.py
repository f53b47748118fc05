"""Who is on each side of a leg (spec 9.1): an extension, an external party or an application."""

from __future__ import annotations

import re
from enum import IntEnum

from sync.calls.context import Context

__all__ = ["Party", "channel_extension", "side_b"]

_NUMERIC = re.compile(r"\+?[0-9][0-9 ()\-.]*")
_MIN_EXTERNAL_DIGITS = 5


class Party(IntEnum):
    EXTENSION = 0
    EXTERNAL = 1
    APPLICATION = 2
    """IVR, voicemail, Park, a feature code: neither an extension nor a customer."""


def channel_extension(channel: str, ctx: Context) -> tuple[str | None, str]:
    """The extension of an extension channel (``None`` for a trunk or an empty channel) and
    the label ``explain`` shows: ``PJSIP/102`` for ``PJSIP/102-00000016``, trunks in full."""
    if not channel or (ctx.trunk_channel is not None and ctx.trunk_channel.search(channel)):
        return None, channel
    match = ctx.extension_channel.search(channel)
    if match is None:
        return None, channel
    if not match.re.groups:
        return match.group() or None, channel
    extension = match.group(1)
    if ctx.custom_extension_channel:
        return extension or None, channel
    if extension is None or not ctx.extension.search(extension):
        return None, channel
    return extension, channel[: match.end(1)]


def side_b(dstchannel: str, dst: str, ctx: Context) -> tuple[Party, str | None, str]:
    """Side B judged by ``dstchannel``; ``dst`` only when there is no ``dstchannel`` (9.4).
    Returns the party, its extension and the label ``explain`` shows."""
    if dstchannel:
        extension, label = channel_extension(dstchannel, ctx)
        party = Party.EXTERNAL if extension is None else Party.EXTENSION
        return party, extension, label
    if (
        _NUMERIC.fullmatch(dst)
        and sum(c.isdigit() for c in dst) >= _MIN_EXTERNAL_DIGITS
        and not ctx.extension.search(dst)
    ):
        return Party.EXTERNAL, None, f"dst {dst!r}"
    return Party.APPLICATION, None, f"dst {dst!r}"
