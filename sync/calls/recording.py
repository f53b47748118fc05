"""R9: the recording link, from ``pbx.recording_url`` and the leg that carries the file.

The CRM stores the link once and never updates it (the upload is keyed by externalId), so a
link is only built from what the PBX recorded and only when it is a usable http(s) URL; a
broken one would make the CRM reject the whole batch.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

if TYPE_CHECKING:
    from sync.calls.facts import LegFacts

__all__ = [
    "file_date",
    "fill_template",
    "is_http_url",
    "pick_recording",
    "recording_file",
    "template_needs_check",
]

_AUDIO_SUFFIXES = (".wav", ".mp3", ".ogg", ".gsm", ".opus")
_FILE_DATE = re.compile(r"(?<![0-9])([0-9]{4})([0-9]{2})([0-9]{2})-[0-9]{6}(?![0-9])")
_URL_SAFE = "/:@!$&'()*+,;=~"
"""Reserved characters a file name may keep; spaces, ``#``, ``?``, ``%`` and non-ASCII are
percent-encoded so the file name cannot break the URL."""
_ALL_SAFE = re.compile(r"[A-Za-z0-9_.\-/:@!$&'()*+,;=~]*")
_WHITESPACE = re.compile(r"\s")
_PLACEHOLDERS = ("{recordingfile}", "{uniqueid}", "{linkedid}", "{date}")


def recording_file(facts: LegFacts) -> str:
    """``recordingfile``, else a ``userfield`` entry that names an audio file (``;`` joins
    the userfields of both parties)."""
    if facts.recordingfile or not facts.userfield:
        return facts.recordingfile
    for part in facts.userfield.split(";"):
        candidate = part.strip()
        if candidate.lower().endswith(_AUDIO_SUFFIXES) and not _WHITESPACE.search(candidate):
            return candidate
    return ""


def pick_recording(
    answering: Iterable[LegFacts], timed: Iterable[LegFacts]
) -> tuple[LegFacts, str] | None:
    """The first answering leg with a recording, else the first leg (start, sequence)."""
    for group in (answering, timed):
        for facts in group:
            name = recording_file(facts)
            if name:
                return facts, name
    return None


def file_date(name: str) -> date | None:
    """The ``YYYYMMDD`` of a ``YYYYMMDD-HHMMSS`` token in a FreePBX file name."""
    match = _FILE_DATE.search(name)
    if match is None:
        return None
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


def _encode(value: str) -> str:
    return value if _ALL_SAFE.fullmatch(value) else quote(value, safe=_URL_SAFE)


def fill_template(
    template: str, *, recordingfile: str, uniqueid: str, linkedid: str, day: date | datetime
) -> str:
    """Placeholders replaced literally, values percent-encoded where needed: a stray ``{``
    in the template or a ``#`` in a file name cannot break the link."""
    url = template
    if "{recordingfile}" in url:
        url = url.replace("{recordingfile}", _encode(recordingfile))
    if "{uniqueid}" in url:
        url = url.replace("{uniqueid}", _encode(uniqueid))
    if "{linkedid}" in url:
        url = url.replace("{linkedid}", _encode(linkedid))
    if "{date}" in url:
        url = url.replace("{date}", f"{day.year:04d}/{day.month:02d}/{day.day:02d}")
    return url


def is_http_url(value: str) -> bool:
    """What the CRM accepts as ``recordUrl``: http(s), a host, no whitespace."""
    if _WHITESPACE.search(value):
        return False
    try:
        parts = urlsplit(value)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False


def template_needs_check(template: str) -> bool:
    """Whether each filled link must be checked: only when the template itself is not an
    http(s) URL or a placeholder sits in the scheme or host, where encoded values land."""
    if not template:
        return False
    sample = template
    for placeholder in _PLACEHOLDERS:
        sample = sample.replace(placeholder, "x")
    if not is_http_url(sample):
        return True
    scheme_end = template.find("://")
    path_start = template.find("/", scheme_end + 3) if scheme_end >= 0 else -1
    head = template if path_start < 0 else template[:path_start]
    return any(placeholder in head for placeholder in _PLACEHOLDERS)
