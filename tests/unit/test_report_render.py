"""The renderers read one document: several tenants, CSV files, text, number formats."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from sync.report.csvout import csv_files, write_csv
from sync.report.fmt import num, pct, secs, span
from sync.report.jsonout import render_json
from sync.report.text import render_text
from tests.report_sample import sample_report


def test_json_one_tenant_is_the_object_several_are_wrapped() -> None:
    one = sample_report(1)
    two = {**sample_report(2), "tenant": "second"}
    assert json.loads(render_json([one]))["tenant"] == "shop"
    wrapped = json.loads(render_json([one, two]))
    assert [t["tenant"] for t in wrapped["tenants"]] == ["shop", "second"]
    lost = wrapped["tenants"][0]["lost_numbers"]
    assert len(lost) == len(one["lost_numbers"]) and lost[0]["first_miss"].endswith("+02:00")


def test_csv_summary_uses_dotted_names_and_the_tables_their_keys(tmp_path: Path) -> None:
    report = sample_report()
    files = csv_files(report)
    summary = dict(csv.reader(io.StringIO(files["summary.csv"])))
    assert summary["metric"] == "value"
    assert summary["inbound.answered"] == str(report["inbound"]["answered"])
    assert summary["missed.lost"] == str(report["missed"]["lost"])
    assert summary["orders.windows.7d.attributed"] == str(
        report["orders"]["windows"][1]["attributed"]
    )
    assert summary["inbound.asa_median_seconds"] == str(report["inbound"]["asa_median_seconds"])
    header = next(csv.reader(io.StringIO(files["managers.csv"])))
    assert header == list(report["managers"][0])
    by_day = list(csv.DictReader(io.StringIO(files["by_day.csv"])))
    assert [d["hours"] for d in by_day][-1] == "25"  # 2026-10-25 in Berlin
    lost = list(csv.DictReader(io.StringIO(files["lost_numbers.csv"])))
    assert len(lost) == len(report["lost_numbers"])
    two = {**sample_report(2), "tenant": "second"}
    written = write_csv([report, two], tmp_path)
    assert {p.parent.name for p in written} == {"shop", "second"}


def test_text_prints_parameters_tables_and_definitions() -> None:
    text = render_text([sample_report()])
    assert text.startswith("Report for shop: 2026-10-19 .. 2026-10-25 (Europe/Berlin)")
    for heading in ("Inbound", "Outbound", "Missed calls", "Managers", "Orders", "Definitions"):
        assert f"\n{heading}" in text
    assert "callback window 1d" in text and "2026-10-25     25" in text


def test_number_formats() -> None:
    assert (pct(None), pct(0.256)) == ("—", "25.6%")
    assert (secs(None), secs(42), secs(185), secs(7500)) == ("—", "42 s", "3:05", "2 h 05 m")
    assert (num(1234567), num(12.5), num(None)) == ("1 234 567", "12.50", "—")
    assert (span(86400), span(1800), span(45)) == ("1d", "30m", "45s")
