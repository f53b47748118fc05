"""``explain EXTERNAL_ID``: the legs, the derived call with the rule behind every field, the
payload and the sync history — what an operator needs to answer "why does the CRM show this"."""

from __future__ import annotations

import argparse
import json
from typing import Any

from sync.calls.builder import build_page
from sync.calls.legs import CallRow, Leg
from sync.cli import CliError
from sync.commands.common import load_settings, open_database
from sync.engine.store import Store
from sync.sources import CallSource, SourceError, open_source
from sync.timeutil import utcnow


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("external_id", metavar="EXTERNAL_ID", help="the call's externalId")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    external_id: str = args.external_id
    prefix = settings.pbx.external_id_prefix
    key = external_id.removeprefix(prefix) if prefix else external_id
    history = Store(open_database(settings)).call_history(external_id)
    try:
        source = open_source(settings.source)
    except SourceError as exc:
        raise CliError(f"call log: {exc}") from None
    try:
        legs: list[Leg] | list[CallRow] = (
            source.rows_of([key]) if isinstance(source, CallSource) else source.legs_of([key])
        )
    finally:
        source.close()
    if not legs and not history:
        raise CliError(f"unknown call {external_id!r}: no legs in the call log, no sync record")
    print(f"externalId {external_id}")
    print(f"\nlegs ({len(legs)}):")
    for leg in legs:
        print("  " + _leg_line(leg))
    calls = [c for c in build_page(legs, settings.build_options(), utcnow()) if c.key == key]
    for call in calls:
        print(f"\nderived: {call.status}" + (f" ({call.skip_reason})" if call.skip_reason else ""))
        print(f"  tenant: {call.tenant or '-'}")
        for name, rule in call.rules:
            print(f"  {name}: {rule}")
        for warning in call.warnings:
            print(f"  warning: {warning}")
        if call.payload is not None:
            print("\npayload:\n  " + json.dumps(call.payload, ensure_ascii=False))
    print("\nsync history:" if history else "\nsync history: never recorded")
    for row in history:
        print("  " + _history_line(row))
    return 0


def _leg_line(leg: Leg | CallRow) -> str:
    if isinstance(leg, CallRow):
        return (
            f"row {leg.id}: {leg.started_at} - {leg.ended_at} {leg.direction} phone={leg.phone} "
            f"ext={leg.extension} result={leg.result} duration={leg.duration} wait={leg.wait}"
        )
    return (
        f"seq {leg.sequence} {leg.uniqueid} {leg.start} answer={leg.answer} end={leg.end} "
        f"{leg.channel or '-'} -> {leg.dstchannel or '-'} src={leg.src} dst={leg.dst} "
        f"{leg.disposition} billsec={leg.billsec}"
        + (f" rec={leg.recordingfile}" if leg.recordingfile else "")
    )


def _history_line(row: dict[str, Any]) -> str:
    parts = [f"tenant {row['tenant']}: {row['status']}", f"attempts={row['attempts']}"]
    for key in ("skip_reason", "batch_id", "sent_at", "next_attempt_at", "last_error"):
        if row.get(key):
            parts.append(f"{key}={row[key]}")
    parts.append(f"updated {row['updated_at']}")
    return ", ".join(parts)
