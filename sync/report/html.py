"""``--format html``: one self-contained page (no script, no external resource, inline SVG).

Readable on a phone (fluid grid, tables scroll sideways) and in print (``@media print``). The
page depends only on the report document, so the same data gives the same bytes.
"""

from __future__ import annotations

from html import escape
from typing import Any

from sync.report.fmt import num, pct, secs, span
from sync.report.svg import bar_chart, heatmap

LOST_ROWS = 200
"""The page lists the first lost numbers only, so it stays small for any period."""
ANSWERED, MISSED, OUTBOUND, ACCENT = "#2e7d32", "#e53935", "#1e3a8a", "#0369a1"

CSS = """
:root{color-scheme:light}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;
color:#111827;background:#f8fafc}
main{max-width:1100px;margin:0 auto;padding:16px}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.15rem;margin:1.6rem 0 .5rem}
h3{font-size:1rem;margin:1rem 0 .4rem}
.muted{color:#4b5563}.note{color:#4b5563;font-size:.85rem}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:10px}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:10px 12px}
.card b{display:block;font-size:1.35rem}.card span{color:#4b5563;font-size:.85rem}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:14px}
.panel{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:10px 12px;
overflow-x:auto}
.chart{width:100%;height:auto;display:block}
.chart .grid{stroke:#e5e7eb}.chart .axis{font-size:11px;fill:#4b5563}
.chart .cell{font-size:10px}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{padding:4px 8px;border-bottom:1px solid #e5e7eb;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
th{background:#f1f5f9;font-weight:600;white-space:normal;vertical-align:bottom}
.bar{display:inline-block;height:8px;background:#0369a1;border-radius:2px;vertical-align:middle;
margin-left:6px}
.bar.red{background:#e53935}
.empty{background:#fff7ed;border:1px solid #fdba74;border-radius:8px;padding:10px}
dl{display:grid;grid-template-columns:minmax(120px,220px) 1fr;gap:4px 12px;font-size:.88rem}
dt{font-weight:600}dd{margin:0}
section.tenant+section.tenant{border-top:3px solid #cbd5e1;margin-top:2rem}
@media (max-width:600px){main{padding:8px}body{font-size:14px}
dl{grid-template-columns:1fr}dd{margin-bottom:6px}.card b{font-size:1.15rem}}
@media print{body{background:#fff;font-size:11pt}main{max-width:none;padding:0}
.panel,.card{border-color:#999;break-inside:avoid}h2{break-after:avoid}
section.tenant{break-before:page}section.tenant:first-child{break-before:auto}
a{color:inherit;text-decoration:none}}
"""


def render_html(reports: list[dict[str, Any]]) -> str:
    names = ", ".join(r["tenant"] for r in reports)
    first = reports[0]["period"]
    title = f"Calls report: {names}, {first['from']} .. {first['to']}"
    body = "".join(_tenant(r) for r in reports)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )


def _card(value: str, label: str) -> str:
    return f'<div class="card"><b>{escape(value)}</b><span>{escape(label)}</span></div>'


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _bar(value: float, peak: float, cls: str = "") -> str:
    width = round(50 * value / peak) if peak else 0
    klass = f"bar {cls}".strip()
    return f'<span class="{klass}" style="width:{width}px"></span>' if width else ""


def _tenant(r: dict[str, Any]) -> str:
    i, o, m, p = r["inbound"], r["outbound"], r["missed"], r["parameters"]
    orders, c = r["orders"], r["customers"]
    period = r["period"]
    out = [
        '<section class="tenant">',
        f"<h1>Calls report — {escape(r['tenant'])}</h1>",
        f'<p class="muted">{escape(period["from"])} .. {escape(period["to"])} '
        f"(days in {escape(period['timezone'])}, last day included)</p>",
        _parameters(p),
    ]
    if r["empty"]:
        out.append(
            '<p class="empty">No calls in this period. Every count below is zero; rates and '
            "times without calls are shown as —.</p>"
        )
    out += [
        '<div class="cards">',
        _card(num(i["offered"]), "inbound offered"),
        _card(pct(i["answer_rate"]), "answer rate"),
        _card(pct(i["service_level"]), f"service level ≤{p['sl_seconds']} s"),
        _card(secs(i["asa_seconds"]), "ASA (mean wait)"),
        _card(num(m["lost"]), "lost, never called back"),
        _card(secs(m["callback_median_seconds"]), "callback time (median)"),
        _card(num(o["attempts"]), "outbound attempts"),
        _card(num(orders["attributed"]), f"orders from calls ({num(orders['revenue'])})"),
        "</div>",
        "<h2>Calls per day</h2>",
        '<div class="panel">',
        _per_day(r),
        "</div>",
        '<div class="grid2">',
        '<div class="panel"><h3>Calls per hour of day</h3>',
        _per_hour(r),
        "</div>",
        '<div class="panel"><h3>Weekday × hour (inbound offered; grey: fewer than 5)</h3>',
        heatmap(
            "Inbound calls by weekday and hour",
            r["heatmap"]["weekdays"],
            r["heatmap"]["offered"],
            r["heatmap"]["unanswered"],
        ),
        "<h3>Weekday × hour: % of inbound unanswered (grey: fewer than 5 calls)</h3>",
        heatmap(
            "Share of inbound calls unanswered by weekday and hour, percent",
            r["heatmap"]["weekdays"],
            r["heatmap"]["offered"],
            r["heatmap"]["unanswered"],
            missed_rate=True,
        ),
        "</div></div>",
        "<h2>Inbound</h2>",
        '<div class="grid2"><div class="panel">',
        _inbound_table(i),
        '</div><div class="panel"><h3>Service level buckets (cumulative, answered)</h3>',
        bar_chart(
            "Answered within N seconds",
            [f"≤{b['seconds']}s" for b in i["service_level_buckets"]],
            [("answered within", [b["answered"] for b in i["service_level_buckets"]], ACCENT)],
        ),
        "</div></div>",
        "<h2>Missed calls: were they called back?</h2>",
        '<div class="grid2"><div class="panel">',
        _missed_table(m),
        '</div><div class="panel"><h3>Time to call back</h3>',
        bar_chart(
            "Episodes by time to call back",
            [b["label"] for b in m["callback_histogram"]],
            [("episodes", [b["episodes"] for b in m["callback_histogram"]], MISSED)],
        ),
        "</div></div>",
        f"<h3>Lost, not called back ({len(r['lost_numbers'])})</h3>",
        '<div class="panel">',
        _lost(r["lost_numbers"]),
        "</div>",
        "<h2>Managers</h2>",
        '<div class="panel">',
        _managers(r["managers"]),
        "</div>",
        "<h2>Outbound, customers and orders</h2>",
        '<div class="grid2"><div class="panel">',
        _table(
            ["outbound", ""],
            [
                ["attempts", num(o["attempts"])],
                ["connected", num(o["connected"])],
                ["connect rate", pct(o["connect_rate"])],
                ["avg talk", secs(o["avg_talk_seconds"])],
            ],
        ),
        _table(
            ["customers", ""],
            [
                ["unique callers", num(c["unique_callers"])],
                ["repeat callers (2+ calls)", num(c["repeat_callers"])],
                ["FCR proxy", f"{pct(c['fcr'])} ({c['fcr_open']} open)"],
                ["new numbers", num(c["new_numbers"])],
                ["returning calls", num(c["returning_calls"])],
            ],
        ),
        '</div><div class="panel">',
        _orders(orders),
        "</div></div>",
        _footer(r),
        "</section>",
    ]
    return "".join(out)


def _parameters(p: dict[str, Any]) -> str:
    items = [
        f"service level {p['sl_seconds']} s",
        f"short abandon &lt; {p['short_abandon_seconds']} s",
        f"callback window {span(p['callback_window_seconds'])}",
        f"repeat window {span(p['repeat_window_seconds'])}",
        f"attribution {span(p['attribution_seconds'])} (also 1d, 7d, 30d)",
        f"transfers credited to the {escape(p['responsible'])} answering extension",
    ]
    if p["manager"]:
        items.append(f"manager {escape(p['manager'])} only")
    if p["data_start"]:
        items.append(f"data from {escape(p['data_start'])}")
    return f'<p class="note">Parameters: {"; ".join(items)}.</p>'


def _per_day(r: dict[str, Any]) -> str:
    days = r["by_day"]
    labels = [d["date"][5:] + ("*" if d["hours"] != 24 else "") for d in days]
    chart = bar_chart(
        "Inbound answered and unanswered per day, outbound line",
        labels,
        [
            ("answered", [d["answered"] for d in days], ANSWERED),
            ("unanswered", [d["unanswered"] for d in days], MISSED),
        ],
        ("outbound", [d["outbound"] for d in days], OUTBOUND),
        label_every=max(1, len(days) // 16),
    )
    odd = [f"{d['date']} has {d['hours']} hours" for d in days if d["hours"] != 24]
    note = f'<p class="note">* daylight-saving change: {"; ".join(odd)}.</p>' if odd else ""
    return chart + note


def _per_hour(r: dict[str, Any]) -> str:
    hours = r["by_hour"]
    return bar_chart(
        "Inbound per hour of day",
        [f"{h['hour']:02d}" for h in hours],
        [
            ("answered", [h["answered"] for h in hours], ANSWERED),
            ("unanswered", [h["unanswered"] for h in hours], MISSED),
        ],
        ("outbound", [h["outbound"] for h in hours], OUTBOUND),
        label_every=2,
    )


def _inbound_table(i: dict[str, Any]) -> str:
    rows = [
        ["offered", num(i["offered"])],
        ["answered", num(i["answered"])],
        ["unanswered", num(i["unanswered"])],
        *[[f"&nbsp;&nbsp;{escape(k)}", num(v)] for k, v in i["unanswered_by_result"].items()],
        ["&nbsp;&nbsp;reached an extension", num(i["unanswered_reached"])],
        ["&nbsp;&nbsp;ended before ringing anyone", num(i["unanswered_not_reached"])],
        ["short abandons", num(i["short_abandons"])],
        ["answer rate", pct(i["answer_rate"])],
        ["abandon rate", pct(i["abandon_rate"])],
        ["service level (inclusive)", pct(i["service_level"])],
        ["service level (answered only)", pct(i["service_level_answered"])],
        ["ASA mean", secs(i["asa_seconds"])],
        ["ASA median / p90", f"{secs(i['asa_median_seconds'])} / {secs(i['asa_p90_seconds'])}"],
        ["avg wait before hang-up", secs(i["avg_wait_before_hangup_seconds"])],
        ["avg talk", secs(i["avg_talk_seconds"])],
    ]
    return _table(["inbound", ""], rows)


def _missed_table(m: dict[str, Any]) -> str:
    names = {
        "called_back_reached": "called back, reached",
        "called_back_not_reached": "called back, not reached",
        "got_through": "customer got through himself",
        "lost": "lost, not called back",
        "open": "open (window not over)",
    }
    rows = [[escape(label), num(m[key]), pct(m["shares"].get(key))] for key, label in names.items()]
    rows.append(["all episodes", num(m["episodes"]), ""])
    rows.append(
        [
            "callback median / p90",
            secs(m["callback_median_seconds"]),
            secs(m["callback_p90_seconds"]),
        ]
    )
    return _table(["episode outcome", "episodes", "share of closed"], rows)


def _lost(lost: list[dict[str, Any]]) -> str:
    if not lost:
        return '<p class="muted">None.</p>'
    rows = []
    for x in lost[:LOST_ROWS]:
        customer = "—"
        if x["customer_id"]:
            customer = str(x["customer_id"])
            if x["customer_url"]:
                customer = f'<a href="{escape(x["customer_url"])}">{customer}</a>'
        rows.append(
            [
                escape(x["phone"]),
                str(x["attempts"]),
                escape(x["first_miss"]),
                escape(x["last_miss"]),
                customer,
            ]
        )
    more = len(lost) - LOST_ROWS
    note = (
        f'<p class="note">… and {more} more: the whole list is in the JSON and CSV formats.</p>'
        if more > 0
        else ""
    )
    return _table(["phone", "attempts", "first miss", "last miss", "customer"], rows) + note


def _managers(managers: list[dict[str, Any]]) -> str:
    if not managers:
        return '<p class="muted">No calls with an extension.</p>'
    peak_in = max(x["answered_in"] for x in managers)
    peak_miss = max(x["missed_first_rung"] for x in managers)
    peak_talk = max(x["talk_seconds"] for x in managers)
    rows = [
        [
            escape(f"{x['code']} {x['name']}".strip()),
            num(x["answered_in"]) + _bar(x["answered_in"], peak_in),
            num(x["missed_first_rung"]) + _bar(x["missed_first_rung"], peak_miss, "red"),
            f"{num(x['out_connected'])} / {num(x['out_attempts'])}",
            secs(x["talk_seconds"]) + _bar(x["talk_seconds"], peak_talk),
            secs(x["asa_seconds"]),
            num(x["callbacks"]),
            f"{num(x['orders'])} ({num(x['revenue'])})",
        ]
        for x in managers
    ]
    header = [
        "extension",
        "answered in",
        "missed (first rung)",
        "out connected / attempts",
        "talk",
        "ASA",
        "callbacks",
        "orders (revenue)",
    ]
    return _table(header, rows)


def _orders(o: dict[str, Any]) -> str:
    rows = [
        ["orders attributed", num(o["attributed"])],
        ["revenue", f"{num(o['revenue'])} {escape(o['currency'] or '')}".strip()],
        ["call conversion", pct(o["call_conversion"])],
        ["customer conversion", pct(o["customer_conversion"])],
        ["time to order (median)", secs(o["time_to_order_median_seconds"])],
        *[
            [f"within {escape(w['window'])}", f"{num(w['attributed'])} ({num(w['revenue'])})"]
            for w in o["windows"]
        ],
    ]
    note = "" if o["mature"] else '<p class="note">Orders may still come: the window is open.</p>'
    return _table(["orders from calls", ""], rows) + note


def _footer(r: dict[str, Any]) -> str:
    skipped = ", ".join(f"{escape(k)}: {v}" for k, v in r["skipped"].items()) or "none"
    terms = "".join(
        f"<dt>{escape(k.replace('_', ' '))}</dt><dd>{escape(v)}</dd>"
        for k, v in r["definitions"].items()
    )
    return (
        f'<h2>Skipped calls</h2><p class="note">Recorded, not uploaded, by reason: {skipped}.</p>'
        f"<h2>Definitions</h2><dl>{terms}</dl>"
    )
