"""What every scripted call shares: the event type, outcome spellings, one event builder."""

from __future__ import annotations

Event = dict[str, str]

OUTCOMES = ("answered", "busy", "no answer", "failed")
DIAL_STATUS = {
    "answered": "ANSWER",
    "busy": "BUSY",
    "no answer": "NOANSWER",
    "failed": "CHANUNAVAIL",
}
DISPOSITION = {
    "answered": "ANSWERED",
    "busy": "BUSY",
    "no answer": "NO ANSWER",
    "failed": "FAILED",
}
ORIGINATE_REASON = {"answered": "4", "busy": "5", "no answer": "3", "failed": "0"}


def channel_event(name: str, channel: str, uniqueid: str, linkedid: str, **extra: str) -> Event:
    return {
        "Event": name,
        "Channel": channel,
        "Uniqueid": uniqueid,
        "Linkedid": linkedid,
        **extra,
    }


def dial_begin(
    linkedid: str, caller: str, caller_uid: str, dest: str, dest_uid: str, **extra: str
) -> Event:
    """``DialBegin`` of one dialled channel (both sides in the call ``linkedid``)."""
    return {
        "Event": "DialBegin",
        "Channel": caller,
        "Uniqueid": caller_uid,
        "Linkedid": linkedid,
        "DestChannel": dest,
        "DestUniqueid": dest_uid,
        "DestLinkedid": linkedid,
        **extra,
    }


def dial_end(
    linkedid: str, caller: str, caller_uid: str, dest: str, dest_uid: str, status: str
) -> Event:
    """``DialEnd`` of one dialled channel (both sides in the call ``linkedid``)."""
    return {
        "Event": "DialEnd",
        "Channel": caller,
        "Uniqueid": caller_uid,
        "Linkedid": linkedid,
        "DestChannel": dest,
        "DestUniqueid": dest_uid,
        "DestLinkedid": linkedid,
        "DialStatus": status,
    }


TENANT_FIELD = "AccountCode"
"""The root channel header the scenarios carry the tenant in (``[ami] tenant_field``)."""


def tenant_header(tenant: str) -> dict[str, str]:
    return {TENANT_FIELD: tenant} if tenant else {}
