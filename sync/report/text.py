"""``--format text``: aligned tables for a terminal, definitions at the end."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sync.report.fmt import num, pct, secs, span


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        pairs = enumerate(zip(row, widths, strict=True))
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs]
        return "  " + "  ".join(cells).rstrip()

    return [line(header), "  " + "  ".join("-" * w for w in widths), *map(line, rows)]


def render_text(reports: list[dict[str, Any]]) -> str:
    return "\n\n".join(_one(r) for r in reports) + "\n"


def _one(r: dict[str, Any]) -> str:
    i, o, m, c, orders = r["inbound"], r["outbound"], r["missed"], r["customers"], r["orders"]
    p = r["parameters"]
    period = r["period"]
    head = f"Report for {r['tenant']}: {period['from']} .. {period['to']} ({period['timezone']})"
    lines = [head, "=" * len(head)]
    if r["empty"]:
        lines += ["No calls in this period: every figure below is zero or undefined (—).", ""]
    lines += [
        f"Parameters: service level {p['sl_seconds']} s, short abandon < "
        f"{p['short_abandon_seconds']} s, callback window {span(p['callback_window_seconds'])}, "
        f"attribution {span(p['attribution_seconds'])}, responsible = {p['responsible']}"
        + (f", manager {p['manager']}" if p["manager"] else ""),
        "",
        "Inbound",
        *_table(
            ("figure", "value"),
            [
                ("offered", num(i["offered"])),
                ("answered", num(i["answered"])),
                ("unanswered", num(i["unanswered"])),
                *[(f"  {res}", num(n)) for res, n in i["unanswered_by_result"].items()],
                ("  reached an extension", num(i["unanswered_reached"])),
                ("  ended before ringing anyone", num(i["unanswered_not_reached"])),
                ("short abandons", num(i["short_abandons"])),
                ("answer rate", pct(i["answer_rate"])),
                ("abandon rate", pct(i["abandon_rate"])),
                ("ASA mean / median / p90", _asa(i)),
                ("service level (inclusive)", pct(i["service_level"])),
                ("service level (answered only)", pct(i["service_level_answered"])),
                ("avg wait before hang-up", secs(i["avg_wait_before_hangup_seconds"])),
                ("avg talk", secs(i["avg_talk_seconds"])),
            ],
        ),
        "",
        "Service level buckets (cumulative, answered)",
        *_table(
            ("answered within", "calls", "share"),
            [
                (f"{b['seconds']} s", num(b["answered"]), pct(b["share"]))
                for b in i["service_level_buckets"]
            ],
        ),
        "",
        "Outbound",
        *_table(
            ("figure", "value"),
            [
                ("attempts", num(o["attempts"])),
                ("connected", num(o["connected"])),
                ("connect rate", pct(o["connect_rate"])),
                ("avg talk", secs(o["avg_talk_seconds"])),
            ],
        ),
        "",
        "Missed calls: episodes and what became of them",
        *_table(
            ("outcome", "episodes", "share"),
            [
                (name.replace("_", " "), num(m[name]), pct(m["shares"].get(name)))
                for name in (
                    "called_back_reached",
                    "called_back_not_reached",
                    "got_through",
                    "lost",
                    "open",
                )
            ]
            + [("all episodes", num(m["episodes"]), "")],
        ),
        f"  callback time median {secs(m['callback_median_seconds'])}, "
        f"p90 {secs(m['callback_p90_seconds'])}; "
        + ", ".join(f"{b['label']}: {b['episodes']}" for b in m["callback_histogram"]),
        "",
        f"Lost, not called back ({len(r['lost_numbers'])})",
        *(
            _table(
                ("phone", "attempts", "first miss", "last miss", "customer"),
                [
                    (
                        x["phone"],
                        str(x["attempts"]),
                        x["first_miss"],
                        x["last_miss"],
                        str(x["customer_id"] or "—"),
                    )
                    for x in r["lost_numbers"]
                ],
            )
            if r["lost_numbers"]
            else ["  none"]
        ),
        "",
        "Managers (missed = first rung)",
        *(
            _table(
                (
                    "ext",
                    "name",
                    "answered",
                    "missed",
                    "out",
                    "connected",
                    "talk",
                    "callbacks",
                    "orders",
                    "revenue",
                ),
                [
                    (
                        x["code"],
                        x["name"],
                        num(x["answered_in"]),
                        num(x["missed_first_rung"]),
                        num(x["out_attempts"]),
                        num(x["out_connected"]),
                        secs(x["talk_seconds"]),
                        num(x["callbacks"]),
                        num(x["orders"]),
                        num(x["revenue"]),
                    )
                    for x in r["managers"]
                ],
            )
            if r["managers"]
            else ["  none"]
        ),
        "",
        "Customers",
        f"  unique callers {c['unique_callers']}, repeat callers {c['repeat_callers']}, "
        f"FCR proxy {pct(c['fcr'])} ({c['fcr_open']} open), new numbers {c['new_numbers']} "
        f"({c['new_number_calls']} calls), returning calls {c['returning_calls']}",
        "",
        "Orders attributed to calls",
        f"  {orders['attributed']} orders, revenue {num(orders['revenue'])} "
        f"{orders['currency'] or ''}".rstrip()
        + f", call conversion {pct(orders['call_conversion'])}, customer conversion "
        f"{pct(orders['customer_conversion'])}, time to order (median) "
        f"{secs(orders['time_to_order_median_seconds'])}",
        "  windows: "
        + ", ".join(
            f"{w['window']}: {w['attributed']} ({num(w['revenue'])})" for w in orders["windows"]
        )
        + ("" if orders["mature"] else "  (still maturing: orders may still come)"),
        "",
        "Per day",
        *_table(
            ("date", "hours", "offered", "answered", "unanswered", "outbound"),
            [
                (
                    d["date"],
                    str(d["hours"]),
                    num(d["offered"]),
                    num(d["answered"]),
                    num(d["unanswered"]),
                    num(d["outbound"]),
                )
                for d in r["by_day"]
            ],
        ),
        "",
        "Skipped (recorded, not uploaded): "
        + (", ".join(f"{k} {v}" for k, v in r["skipped"].items()) or "none"),
        "",
        "Definitions",
        *[f"  {name}: {text}" for name, text in r["definitions"].items()],
    ]
    return "\n".join(lines)


def _asa(i: dict[str, Any]) -> str:
    parts = (i["asa_seconds"], i["asa_median_seconds"], i["asa_p90_seconds"])
    return " / ".join(secs(v) for v in parts)
