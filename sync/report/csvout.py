"""``--format csv``: one file per table in the ``--output`` folder (design §7.1), and the
definitions in ``definitions.csv`` (every format prints them)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sync.report.tables import DAY_KEYS, HOUR_KEYS, LOST_KEYS, MANAGER_KEYS, summary, table


def csv_files(report: dict[str, Any]) -> dict[str, str]:
    """File name -> content; empty cells for undefined values."""
    files: dict[str, tuple[Sequence[str], Sequence[Sequence[Any]]]] = {
        "summary.csv": (("metric", "value"), summary(report)),
        "managers.csv": (MANAGER_KEYS, table(report["managers"], MANAGER_KEYS)),
        "by_day.csv": (DAY_KEYS, table(report["by_day"], DAY_KEYS)),
        "by_hour.csv": (HOUR_KEYS, table(report["by_hour"], HOUR_KEYS)),
        "lost_numbers.csv": (LOST_KEYS, table(report["lost_numbers"], LOST_KEYS)),
        "definitions.csv": (("term", "definition"), list(report["definitions"].items())),
    }
    out = {}
    for name, (header, rows) in files.items():
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([["" if v is None else v for v in row] for row in rows])
        out[name] = buffer.getvalue()
    return out


def write_csv(reports: list[dict[str, Any]], folder: Path) -> list[Path]:
    """One tenant: files in ``folder``; several: one sub-folder per tenant."""
    written = []
    for report in reports:
        target = folder if len(reports) == 1 else folder / report["tenant"]
        target.mkdir(parents=True, exist_ok=True)
        for name, text in csv_files(report).items():
            path = target / name
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written
