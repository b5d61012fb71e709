"""The monthly cross-border report for one partner district: its shared sections' class for
the month by the 2011 evaluation method (from the stations' own hourly uploads), every water
alert we sent the partner with its answer — who accepted or refused it, when, whether it
escalated — and the closed loop of each alarm with the time to each stage.

HTML like the shift report (`dashboard.report`), printed to PDF by the same headless
Chromium. Months are calendar months in China Standard Time (Asia/Shanghai).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

from dashboard.report import ReportError, print_pdf
from dashboard.period_means import select_list, values_of
from ingest.rules.evaluation import grade
from ingest.rules.gb3838 import WaterBody, WaterClass
from kernel.settings import RegionSettings

TZ = ZoneInfo("Asia/Shanghai")


@dataclass
class PartnerReport:
    partner: dict[str, Any]
    start: datetime
    end: datetime
    sections: list[dict[str, Any]]
    alerts: list[dict[str, Any]]


def month_window(month: str) -> tuple[datetime, datetime]:
    try:
        first = datetime.strptime(month, "%Y-%m").date()
    except ValueError:
        raise ReportError(f"--month {month!r} is not YYYY-MM") from None
    following = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return datetime.combine(first, time(), TZ), datetime.combine(following, time(), TZ)


def collect(conn: psycopg.Connection, partner_id: str, start: datetime, end: datetime) -> PartnerReport:
    cur = conn.cursor(row_factory=dict_row)
    partner = cur.execute("SELECT partner_id, name, duty_contact, ack_timeout_s FROM partners WHERE partner_id = %s", (partner_id,)).fetchone()
    if partner is None:
        raise ReportError(f"no partner {partner_id!r} in the registry")
    p = {"pid": partner_id, "lo": start, "hi": end}
    means = select_list("a")
    sections = cur.execute(
        f"""SELECT s.station_id, s.name, s.water_body, s.target_class, s.category,
                   count(a.period_start) AS hours, {means}
            FROM stations s LEFT JOIN station_averages a ON a.station_id = s.station_id AND a.period = 'hour'
                 AND a.period_start >= %(lo)s AND a.period_start < %(hi)s
            WHERE s.partner_id = %(pid)s GROUP BY s.station_id ORDER BY s.station_id""",
        p,
    ).fetchall()
    for s in sections:
        values = values_of(s)
        s["grade"] = grade(values, WaterBody(s["water_body"])).to_json()
        s["target"] = WaterClass(s["target_class"]).label
    alerts = cur.execute(
        """SELECT c.alarm_id, c.identifier, c.sent, c.answer, c.answered_at, c.answered_by, c.answer_note, c.escalated_at,
                  a.alarm_type, a.source_id AS station_id, a.first_seen, a.cleared_at, a.detail ->> 'parameter' AS parameter,
                  a.detail ->> 'class' AS class, i.incident_id, i.loop_stage,
                  (SELECT min(d.at) FROM dispatch_audit d WHERE d.incident_id = i.incident_id AND d.action = 'assigned') AS assigned_at,
                  (SELECT min(d.at) FROM dispatch_audit d WHERE d.incident_id = i.incident_id AND d.action IN ('closed', 'cancelled')) AS closed_at
           FROM cap_alerts c JOIN alarms a ON a.alarm_id = c.alarm_id
           LEFT JOIN incidents i ON i.incident_id = (SELECT x.incident_id FROM incident_alarms x WHERE x.alarm_id = c.alarm_id LIMIT 1)
           WHERE c.partner_id = %(pid)s AND c.msg_type = 'Alert' AND c.sent >= %(lo)s AND c.sent < %(hi)s
           ORDER BY c.sent""",
        p,
    ).fetchall()
    for a in alerts:
        t0 = a["first_seen"]
        a["stages"] = {
            name: None if at is None else (at - t0).total_seconds()
            for name, at in (("alert sent", a["sent"]), ("partner answered", a["answered_at"]), ("patrol assigned", a["assigned_at"]),
                             ("closed out", a["closed_at"]), ("water back in class", a["cleared_at"]))
        }
    return PartnerReport(partner=partner, start=start, end=end, sections=sections, alerts=alerts)


def _e(v: Any) -> str:
    return "" if v is None else html.escape(str(v))


def _dur(s: float | None) -> str:
    if s is None:
        return "—"
    return f"{s / 60:.0f} min" if s < 2 * 3600 else f"{s / 3600:.1f} h"


def render_html(r: PartnerReport, region: RegionSettings) -> str:
    name = f"{region.name_zh} – {r.partner['name']}"
    out = [
        "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>",
        f"<title>跨界水质月报 · {_e(name)}</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #bbb;padding:4px 8px;font-size:13px}th{background:#eee}.meta{color:#555}</style></head><body>",
        f"<h1>跨界断面水质月报 / Cross-border water report · {_e(name)}</h1>",
        f"<p class='meta'>{r.start:%Y-%m} · {_e(r.start.date())} – {_e(r.end.date())} (Asia/Shanghai) · "
        f"duty contact: {_e(r.partner['duty_contact']) or '—'} · Ack expected within {r.partner['ack_timeout_s'] // 60} min</p>",
        "<h2>Sections: the month's class (2011 evaluation method)</h2>",
        "<p class='meta'>Graded from the stations' own hourly uploads: the month's mean of normal (N) hours per "
        "parameter, single factor; lakes' TN apart. 'graded from' lists the parameters the class covers.</p>",
        "<table><tr><th>station</th><th>hours</th><th>class / target</th><th>worst</th><th>graded from</th><th>lake TN / TLI</th></tr>",
    ]
    for s in r.sections:
        g = s["grade"]
        lake = f"{g['tn_class'] or '—'} / {g['tli'] if g['tli'] is not None else '—'}" if s["water_body"] == "lake" else ""
        out.append(f"<tr><td>{_e(s['station_id'])} {_e(s['name'])}</td><td>{s['hours']}</td><td>{_e(g['class']) or '—'} / {_e(s['target'])}</td>"
                   f"<td>{_e(g['worst_parameter'])}</td><td>{_e(', '.join(g['covers']))}</td><td>{_e(lake)}</td></tr>")
    out.append("</table><h2>Alerts to the partner and the closed loop</h2>")
    if not r.alerts:
        out.append("<p class='meta'>No alerts this month.</p>")
    else:
        stages = list(r.alerts[0]["stages"])
        out.append("<table><tr><th>alarm</th><th>station</th><th>parameter / class</th><th>answer</th><th>by</th><th>escalated</th>"
                   + "".join(f"<th>{_e(s)}</th>" for s in stages) + "<th>loop</th></tr>")
        for a in r.alerts:
            answer = {"Ack": "accepted", "Error": "refused"}.get(a["answer"] or "", "no answer")
            out.append(
                f"<tr><td>{a['alarm_id']} ({_e(a['alarm_type'])})</td><td>{_e(a['station_id'])}</td><td>{_e(a['parameter'])} / {_e(a['class'])}</td>"
                f"<td>{answer}</td><td>{_e(a['answered_by'])}</td><td>{'yes' if a['escalated_at'] else ''}</td>"
                + "".join(f"<td>{_dur(a['stages'][s])}</td>" for s in stages)
                + f"<td>{_e(a['loop_stage'])}</td></tr>"
            )
        out.append("</table><p class='meta'>Times are from the alarm's first reading out of class.</p>")
    out.append("</body></html>")
    return "\n".join(out)


def build(
    database_url: str, partner_id: str, month: str, out_dir: Path, *, region: RegionSettings, pdf: bool = True
) -> tuple[Path, Path | None]:
    start, end = month_window(month)
    with psycopg.connect(database_url) as conn:
        data = collect(conn, partner_id, start, end)
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path = out_dir / f"cross-border-{partner_id}-{month}.html"
    html_path.write_text(render_html(data, region), encoding="utf-8")
    pdf_path = None
    if pdf:
        pdf_path = html_path.with_suffix(".pdf")
        print_pdf(html_path, pdf_path)
    return html_path, pdf_path
