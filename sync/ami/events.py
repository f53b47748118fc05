"""Typed views of the AMI messages ``serve`` acts on; everything else stays a ``Message``."""

from __future__ import annotations

from dataclasses import dataclass

from sync.ami.protocol import Message


@dataclass(frozen=True, slots=True)
class OriginateResponse:
    """The outcome of an ``Async`` Originate: ``Reason`` is an ``AST_CONTROL_*`` number
    (0 failed, 1 hangup, 3 rang out, 4 answered, 5 busy, 8 congestion)."""

    action_id: str
    success: bool
    reason: str
    channel: str
    uniqueid: str
    """The ``ChannelId`` we chose: the call's linkedid."""

    @classmethod
    def parse(cls, message: Message) -> OriginateResponse | None:
        if message.event != "OriginateResponse":
            return None
        return cls(
            action_id=message.action_id,
            success=message.get("Response").lower() == "success",
            reason=message.get("Reason"),
            channel=message.get("Channel"),
            uniqueid=message.get("Uniqueid"),
        )
