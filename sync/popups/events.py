"""Typed views of the AMI events the pop-up machine reads, and the call events it emits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sync.ami.protocol import Message

PopupType = Literal["in", "out", "hangup"]
HangupStatus = Literal["answered", "busy", "cancel", "failed", "no answered"]

RINGING = "5"
UP = "6"


@dataclass(frozen=True, slots=True)
class AmiEvent:
    """One AMI event reduced to what the machine needs; ``at`` is when it was read (seconds of
    the caller's clock), so the machine never reads a clock itself."""

    name: str
    at: float
    channel: str = ""
    uniqueid: str = ""
    linkedid: str = ""
    state: str = ""
    caller: str = ""
    connected: str = ""
    exten: str = ""
    tenant_value: str = ""
    dest_channel: str = ""
    dest_uniqueid: str = ""
    dest_caller: str = ""
    dial_status: str = ""
    dial_string: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    """Transfer fields (``TransfererChannel``, ``OrigTransfererLinkedid``...)."""

    @classmethod
    def parse(cls, message: Message, at: float, tenant_field: str = "") -> AmiEvent:
        # One dict per event instead of a scan of the headers per field: this runs for every
        # event Asterisk sends, on the loop that also reads the socket.
        fields = {key.lower(): value for key, value in message.headers}
        get = fields.get
        name = get("event", "")
        extra: dict[str, str] = {}
        if name in ("BlindTransfer", "AttendedTransfer"):
            extra = {k: v for k, v in message.headers if "Transfer" in k or k == "DestType"}
        return cls(
            name=name,
            at=at,
            channel=get("channel", ""),
            uniqueid=get("uniqueid", ""),
            linkedid=get("linkedid", ""),
            state=get("channelstate", ""),
            caller=get("calleridnum", ""),
            connected=get("connectedlinenum", ""),
            exten=get("exten", ""),
            tenant_value=get(tenant_field.lower(), "") if tenant_field else "",
            dest_channel=get("destchannel", ""),
            dest_uniqueid=get("destuniqueid", ""),
            dest_caller=get("destcalleridnum", ""),
            dial_status=get("dialstatus", ""),
            dial_string=get("dialstring", ""),
            extra=extra,
        )


WANTED = frozenset(
    {
        "Newchannel",
        "Newstate",
        "DialBegin",
        "DialEnd",
        "Hangup",
        "BlindTransfer",
        "AttendedTransfer",
    }
)
"""Events the machine acts on; everything else is not even parsed."""


@dataclass(frozen=True, slots=True)
class Popup:
    """One ``call/event`` to send. ``at`` is the time of the AMI event that caused it: the
    deadline counts from there, so a pop-up that waited in a queue is not sent late."""

    tenant: str
    type: PopupType
    codes: tuple[str, ...]
    phone: str
    call_external_id: str
    linkedid: str
    at: float
    external_phone: str = ""
    hangup_status: HangupStatus | None = None

    def payload(self) -> dict[str, Any]:
        event: dict[str, Any] = {
            "phone": self.phone,
            "type": self.type,
            "codes": list(self.codes),
            "callExternalId": self.call_external_id,
        }
        if self.external_phone:
            event["externalPhone"] = self.external_phone
        if self.hangup_status is not None:
            event["hangupStatus"] = self.hangup_status
        return event
