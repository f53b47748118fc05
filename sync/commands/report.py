"""``report``: call and sales report from our own tables (design §7, §7.1).

Every bad argument is one line and exit 2: the sub-parser's ``error`` is replaced, and unknown
options are refused by the sub-parser itself (argparse would otherwise pass them up to the main
parser, which prints its usage block first).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any, NoReturn

from sync.cli import CliError
from sync.commands.common import load_settings, open_database
from sync.config import Settings, TenantSettings
from sync.report.build import build_report
from sync.report.csvout import write_csv
from sync.report.html import render_html
from sync.report.jsonout import render_json
from sync.report.period import PERIODS, Parameters, Period, named_period, parse_duration
from sync.report.store import ReportStore
from sync.report.text import render_text
from sync.timeutil import utc_to_local, utcnow

FORMATS = ("text", "json", "csv", "html")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenant", action="append", metavar="NAME", help="only this tenant")
    parser.add_argument("--from", dest="date_from", metavar="DATE", help="first day YYYY-MM-DD")
    parser.add_argument("--to", dest="date_to", metavar="DATE", help="last day, inclusive")
    parser.add_argument("--period", choices=PERIODS, help="named period (default: yesterday)")
    parser.add_argument("--manager", metavar="CODE", help="only this extension's calls")
    parser.add_argument("--format", choices=FORMATS, default="text", help="output (text)")
    parser.add_argument("--output", metavar="PATH", help="file (text/json/html) or folder (csv)")
    parser.add_argument(
        "--sl", type=_seconds, default=20, metavar="SECONDS", help="service level threshold (20)"
    )
    parser.add_argument(
        "--short", type=_seconds, default=5, metavar="SECONDS", help="short abandon below (5)"
    )
    parser.add_argument(
        "--callback-window",
        type=_duration,
        default=timedelta(hours=24),
        metavar="SPAN",
        help="a callback within this span of a missed call counts (24h; 30m, 4h, 7d)",
    )
    parser.add_argument(
        "--attribution",
        type=_duration,
        default=timedelta(days=1),
        metavar="SPAN",
        help="an order this long after an answered call is attributed to it (1d)",
    )
    parser.set_defaults(handler=run)
    _one_line_errors(parser)


def _one_line_errors(parser: argparse.ArgumentParser) -> None:
    def error(message: str) -> NoReturn:
        print(f"retailcrm-sync report: {message}", file=sys.stderr)
        sys.exit(2)

    parse_known = parser.parse_known_args

    def parse_known_args(
        args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        found, extras = parse_known(args, namespace)
        if extras:
            error(f"unrecognized arguments: {' '.join(extras)}")
        return found, extras

    parser.error = error  # type: ignore[method-assign]
    parser.parse_known_args = parse_known_args  # type: ignore[method-assign,assignment]


def _seconds(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"not a whole number of seconds: {text!r}")
    return int(text)


def _duration(text: str) -> timedelta:
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value <= timedelta(0):
        raise argparse.ArgumentTypeError(f"must be longer than zero: {text!r}")
    return value


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CliError(f"{option}: not a date (YYYY-MM-DD): {text!r}", 2) from None


def period_for(args: argparse.Namespace, tenant: TenantSettings, today: date) -> Period:
    """Explicit dates, else ``--period`` (default yesterday), in the tenant's zone."""
    if args.date_from or args.date_to:
        if args.period:
            raise CliError("give either --from/--to or --period, not both", 2)
        if not args.date_from:
            raise CliError("--to needs --from", 2)
        first = _day(args.date_from, "--from")
        last = _day(args.date_to, "--to") if args.date_to else first
        if first > last:
            raise CliError(f"--from {first} is after --to {last}", 2)
        return Period(first, last, tenant.timezone)
    first, last = named_period(args.period or "yesterday", today)
    return Period(first, last, tenant.timezone)


def _tenants(settings: Settings, names: Sequence[str] | None) -> list[TenantSettings]:
    known = {t.name: t for t in settings.tenants}
    for name in names or ():
        if name not in known:
            raise CliError(f"unknown tenant {name!r} (configured: {', '.join(sorted(known))})", 2)
    return [known[n] for n in names] if names else list(settings.tenants)


def _check_output(args: argparse.Namespace) -> Path | None:
    """The folder (csv) or the file's folder must be writable; checked before any work."""
    if args.output is None:
        if args.format == "csv":
            raise CliError("--format csv needs --output FOLDER", 2)
        return None
    path = Path(args.output)
    if args.format != "csv" and path.is_dir():
        raise CliError(f"--output {args.output}: is a folder; give a file name", 2)
    folder = path if args.format == "csv" else path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise CliError(f"--output {args.output}: cannot write in {folder}: {reason}", 2) from None
    return path


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    tenants = _tenants(settings, args.tenant)
    now = utcnow()
    periods = [period_for(args, t, utc_to_local(now, t.timezone).date()) for t in tenants]
    output = _check_output(args)
    engine = open_database(settings)
    try:
        if args.manager is not None:
            store = ReportStore(engine)
            if not any(
                args.manager in t.extensions or store.has_extension(t.name, args.manager)
                for t in tenants
            ):
                raise CliError(f"unknown manager {args.manager!r}: no such extension", 2)
        start = settings.source.start_date
        reports: list[dict[str, Any]] = []
        for tenant, period in zip(tenants, periods, strict=True):
            params = Parameters(
                sl=args.sl,
                short=args.short,
                callback_window=args.callback_window,
                attribution=args.attribution,
                responsible=settings.pbx.responsible,
                manager=args.manager,
                data_start=start.isoformat(sep=" ") if start else None,
            )
            reports.append(build_report(engine, settings, tenant, period, params, now))
    finally:
        engine.dispose()
    return _emit(args.format, reports, output)


def _emit(fmt: str, reports: list[dict[str, Any]], output: Path | None) -> int:
    try:
        if fmt == "csv":
            assert output is not None
            written = write_csv(reports, output)
            print(f"wrote {len(written)} files in {output}")
            return 0
        text = {"text": render_text, "json": render_json, "html": render_html}[fmt](reports)
        if output is None:
            sys.stdout.write(text)
        else:
            output.write_text(text, encoding="utf-8")
            print(f"wrote {output}")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise CliError(f"--output {output}: cannot write: {reason}", 2) from None
    return 0
