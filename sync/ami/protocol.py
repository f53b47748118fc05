"""The AMI wire format: ``Key: Value`` lines, a blank line ends a message (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

MAX_MESSAGE_BYTES = 256 * 1024
"""A peer that sends more than this without a blank line is not speaking AMI."""


class ProtocolError(Exception):
    """The peer sent something that is not AMI."""


@dataclass(frozen=True, slots=True)
class Message:
    """One AMI message: an action, a response or an event, headers in arrival order."""

    headers: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @classmethod
    def of(cls, fields: Mapping[str, str]) -> Message:
        return cls(tuple(fields.items()))

    def get(self, name: str, default: str = "") -> str:
        lower = name.lower()
        for key, value in self.headers:
            if key.lower() == lower:
                return value
        return default

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(k.lower() == name.lower() for k, _ in self.headers)

    @property
    def event(self) -> str:
        return self.get("Event")

    @property
    def action_id(self) -> str:
        return self.get("ActionID")

    @property
    def is_response(self) -> bool:
        """An answer to an action (``OriginateResponse`` has a Response header but is an event)."""
        return "Response" in self and "Event" not in self

    @property
    def success(self) -> bool:
        return self.get("Response").lower() in ("success", "goodbye", "follows")

    def as_dict(self) -> dict[str, str]:
        return dict(self.headers)


def encode_action(fields: Mapping[str, str] | Iterable[tuple[str, str]]) -> bytes:
    """Wire bytes of one message; a key or value with CR, LF (or a key with ``:``) is refused.

    This is the last line of defence against header injection: the click handler refuses
    such input long before, but no caller can smuggle a second header past this function.
    """
    items = fields.items() if isinstance(fields, Mapping) else fields
    lines = []
    for key, value in items:
        if not key or any(c in key for c in "\r\n:") or any(c in value for c in "\r\n"):
            raise ValueError(f"unsafe AMI header {key!r}")
        lines.append(f"{key}: {value}\r\n")
    return ("".join(lines) + "\r\n").encode("utf-8")


class Parser:
    """Incremental decoder: feed bytes, get complete messages; the banner line is skipped."""

    def __init__(self) -> None:
        self._buffer = b""
        self._headers: list[tuple[str, str]] = []
        self.banner: str | None = None

    def feed(self, data: bytes) -> list[Message]:
        self._buffer += data
        messages: list[Message] = []
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > MAX_MESSAGE_BYTES:
                    raise ProtocolError("line too long")
                return messages
            raw, self._buffer = self._buffer[:end], self._buffer[end + 1 :]
            line = raw.rstrip(b"\r").decode("utf-8", errors="replace")
            if not line:
                if self._headers:
                    messages.append(Message(tuple(self._headers)))
                    self._headers = []
                continue
            key, sep, value = line.partition(":")
            if not sep:
                if self.banner is None and not self._headers:
                    self.banner = line  # "Asterisk Call Manager/9.0.0"
                    continue
                raise ProtocolError(f"not a header line: {line[:60]!r}")
            self._headers.append((key.strip(), value.strip()))
            if len(self._headers) > 1000:
                raise ProtocolError("message with too many headers")
