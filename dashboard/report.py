"""The daily shift report: `watchpost report --from DATE --to DATE --out DIR` writes
report-<from>_<to>.html and .pdf.

Contents: incidents with their timelines (dispatch_audit, and alarm_audit of their alarms),
dispatch and response times against the targets, water exceedances with their close-out
state (the incident's loop_stage), silent devices, and escalations that reached the control
room. Dates are calendar days in China Standard Time (Asia/Shanghai); `--to` is inclusive.

The PDF is the HTML printed by headless Chromium (`--print-to-pdf`): the same engine and
fonts (CJK included) as the console, no extra Python dependency, and the browser the
end-to-end tests already need."""

from __future__ import annotations

import html
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

from dispatch.first_response import FirstResponderSummary, summarise
from dispatch.targets import DISPATCH, RESPONSE, RESPONSE_P1_MEAN
from kernel.settings import RegionSettings
from dashboard.trends import (
    DISPATCH_EDGES,
    RESPONSE_EDGES,
    SERVICE_TIMES_SQL,
    TARGETS,
    distribution,
)

TZ = ZoneInfo("Asia/Shanghai")
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


class ReportError(Exception):
    pass


@dataclass
class ReportData:
    start: datetime
    end: datetime
    generated: datetime
    incidents: list[dict[str, Any]]
    timelines: dict[str, list[dict[str, Any]]]
    dispatch: dict[str, Any]
    response: dict[str, Any]
    p1_mean_s: float | None
    exceedances: list[dict[str, Any]]
    silent: list[dict[str, Any]]
    escalations: list[dict[str, Any]]
    coverage: dict[str, Any] | None = None  # time-weighted shares of villages within 8 / 12 / 15 min
    first_responders: FirstResponderSummary | None = None


def window(day_from: date, day_to: date) -> tuple[datetime, datetime]:
    if day_to < day_from:
        raise ReportError("--to must not be before --from")
    return datetime.combine(day_from, time(), TZ), datetime.combine(day_to + timedelta(days=1), time(), TZ)


def collect(conn: psycopg.Connection, start: datetime, end: datetime) -> ReportData:
    cur = conn.cursor(row_factory=dict_row)
    p = {"lo": start, "hi": end}
    times = {r["incident_id"]: r for r in cur.execute(SERVICE_TIMES_SQL, p).fetchall()}
    incidents = cur.execute(
        """SELECT i.incident_id, i.kind, i.priority, i.state, i.loop_stage, i.created_at, i.person_id, i.station_id,
                  COALESCE(p.town, s.town) AS town, i.description
           FROM incidents i LEFT JOIN persons p ON p.person_id = i.person_id LEFT JOIN stations s ON s.station_id = i.station_id
           WHERE i.created_at >= %(lo)s AND i.created_at < %(hi)s ORDER BY i.created_at""",
        p,
    ).fetchall()
    for i in incidents:
        t = times.get(i["incident_id"]) or {}
        i["dispatch_s"], i["response_s"] = t.get("dispatch_s"), t.get("response_s")
    ids = [i["incident_id"] for i in incidents]
    timeline_rows = cur.execute(
        """SELECT incident_id, at, 'dispatch' AS source, action, actor, unit_id, detail FROM dispatch_audit WHERE incident_id = ANY(%(ids)s)
           UNION ALL
           SELECT x.incident_id, a.at, 'alarm', a.action, a.actor, NULL, a.detail
           FROM alarm_audit a JOIN (SELECT incident_id, alarm_id FROM incident_alarms WHERE incident_id = ANY(%(ids)s)
                                    UNION SELECT incident_id, alarm_id FROM incidents WHERE incident_id = ANY(%(ids)s) AND alarm_id IS NOT NULL) x
             ON x.alarm_id = a.alarm_id
           ORDER BY 1, 2""",
        {"ids": ids},
    ).fetchall()
    timelines: dict[str, list[dict]] = {}
    for r in timeline_rows:
        timelines.setdefault(r["incident_id"], []).append(r)
    d = [i["dispatch_s"] for i in incidents if i["dispatch_s"] is not None]
    rs = [i["response_s"] for i in incidents if i["response_s"] is not None]
    p1 = [i["response_s"] for i in incidents if i["priority"] == 1 and i["response_s"] is not None]
    exceedances = cur.execute(
        """SELECT a.alarm_id, a.source_id AS station_id, s.name, s.town, a.severity, a.state, a.first_seen, a.cleared_at,
                  a.detail ->> 'parameter' AS parameter, a.detail ->> 'class' AS class, s.target_class,
                  a.alarm_type, a.detail -> 'covers' AS covers, (a.detail ->> 'at_least')::boolean AS at_least,
                  inc.incident_id, inc.state AS incident_state, inc.loop_stage
           FROM alarms a JOIN stations s ON s.station_id = a.source_id
           LEFT JOIN LATERAL (SELECT i.* FROM incidents i WHERE i.alarm_id = a.alarm_id
                                 OR i.incident_id IN (SELECT incident_id FROM incident_alarms x WHERE x.alarm_id = a.alarm_id)
                                 OR (i.station_id = a.source_id AND i.created_at >= a.first_seen
                                     AND (a.cleared_at IS NULL OR i.created_at <= a.cleared_at))
                              ORDER BY i.created_at LIMIT 1) inc ON TRUE
           WHERE a.source_kind = 'station' AND a.alarm_type IN ('water_class_exceeded', 'water_hourly_exceeded')
             AND a.first_seen < %(hi)s AND (a.cleared_at IS NULL OR a.cleared_at >= %(lo)s)
           ORDER BY a.first_seen""",
        p,
    ).fetchall()
    silent = cur.execute(
        """SELECT alarm_id, source_kind, source_id, person_id, state, first_seen, last_seen, cleared_at, detail
           FROM alarms WHERE alarm_type = 'device_silent' AND first_seen < %(hi)s AND (cleared_at IS NULL OR cleared_at >= %(lo)s)
           ORDER BY first_seen""",
        p,
    ).fetchall()
    escalations = cur.execute(
        """SELECT a.alarm_id, a.alarm_type, a.severity, a.person_id, a.state, a.first_seen, a.acked_at, a.acked_by,
                  (SELECT min(at) FROM alarm_audit u WHERE u.alarm_id = a.alarm_id AND u.action = 'escalated'
                     AND u.detail::text LIKE '%%control_room%%') AS reached_at
           FROM alarms a WHERE a.control_room AND a.first_seen < %(hi)s AND a.last_seen >= %(lo)s ORDER BY a.first_seen""",
        p,
    ).fetchall()
    samples = cur.execute(
        """SELECT at, within_8, within_12, within_15, uncovered_towns FROM (
               (SELECT * FROM coverage_samples WHERE at < %(lo)s ORDER BY at DESC LIMIT 1)
               UNION ALL SELECT * FROM coverage_samples WHERE at >= %(lo)s AND at < %(hi)s) s ORDER BY at""",
        p,
    ).fetchall()
    responders = cur.execute(
        """SELECT f.answer, f.on_scene_at AS doctor_at,
                  (SELECT min(d.at) FROM dispatch_audit d WHERE d.incident_id = f.incident_id AND d.action = 'transition'
                     AND d.detail ->> 'to' = 'on_scene') AS unit_at
           FROM first_responses f JOIN incidents i USING (incident_id)
           WHERE i.created_at >= %(lo)s AND i.created_at < %(hi)s""",
        p,
    ).fetchall()
    return ReportData(
        first_responders=summarise([(r["answer"], r["doctor_at"], r["unit_at"]) for r in responders]),
        start=start, end=end, generated=datetime.now(TZ), incidents=incidents, timelines=timelines,
        coverage=daily_coverage(samples, start, end),
        dispatch=distribution(d, DISPATCH_EDGES, TARGETS["dispatch"]["seconds"]),
        response=distribution(rs, RESPONSE_EDGES, TARGETS["response"]["seconds"]),
        p1_mean_s=sum(p1) / len(p1) if p1 else None,
        exceedances=exceedances, silent=silent, escalations=escalations,
    )


def daily_coverage(samples: list[dict[str, Any]], start: datetime, end: datetime) -> dict[str, Any] | None:
    """The coverage over the window, each sample weighted by how long it stood (until the next
    one, or the window's end); the sample before the window stands from its start. None when
    nothing was sampled."""
    if not samples:
        return None
    totals = {"within_8": 0.0, "within_12": 0.0, "within_15": 0.0}
    covered_s = 0.0
    worst = 1.0
    for k, sample in enumerate(samples):
        lo = max(sample["at"], start)
        hi = min(samples[k + 1]["at"] if k + 1 < len(samples) else end, end)
        span = (hi - lo).total_seconds()
        if span <= 0:
            continue
        covered_s += span
        for key in totals:
            totals[key] += span * sample[key]
        worst = min(worst, sample["within_15"])
    if covered_s <= 0:
        return None
    return {**{k: v / covered_s for k, v in totals.items()}, "worst_within_15": worst, "hours": covered_s / 3600}


# --- HTML --------------------------------------------------------------------------------------

CSS = """
@page { size: A4; margin: 14mm 12mm; }
body { font-family: "Noto Sans CJK SC", "Noto Sans", "DejaVu Sans", sans-serif; font-size: 10.5pt; color: #111827; }
h1 { font-size: 17pt; margin: 0 0 2mm; } h2 { font-size: 13pt; margin: 7mm 0 2mm; border-bottom: 1.5px solid #1d4ed8; }
h3 { font-size: 11pt; margin: 4mm 0 1mm; }
.meta { color: #4b5563; } .kpis { display: flex; gap: 4mm; } .kpi { flex: 1; background: #f3f4f6; padding: 2mm 3mm; border-radius: 2mm; }
.kpi b { font-size: 15pt; display: block; } .ok { color: #15803d; } .bad { color: #b91c1c; }
table { border-collapse: collapse; width: 100%; margin: 1mm 0 3mm; page-break-inside: auto; }
th, td { border-bottom: 0.5px solid #d1d5db; padding: 1mm 1.5mm; text-align: left; vertical-align: top; }
th { background: #eef2ff; } tr { page-break-inside: avoid; } .tl td { font-size: 9pt; color: #374151; }
.empty { color: #6b7280; font-style: italic; }
"""


def _e(v: Any) -> str:
    return html.escape("" if v is None else str(v))


def _t(v: datetime | None) -> str:
    return "" if v is None else v.astimezone(TZ).strftime("%m-%d %H:%M:%S")


def _s(v: float | None) -> str:
    return "–" if v is None else f"{v:.0f} s"


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v * 100:.0f} %"


def _verdict(ok: bool | None) -> str:
    return "" if ok is None else ('<span class="ok">✓</span>' if ok else '<span class="bad">✗</span>')


def render_html(r: ReportData, region: RegionSettings) -> str:
    T = TARGETS
    title = f"{_e(region.control_room('zh'))} · 值班报告 / {_e(region.control_room('en'))}: shift report"
    out = [f"<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'><title>{title}</title><style>{CSS}</style></head><body>"]
    out.append(f"<h1>{title}</h1><p class='meta'>{_e(r.start.strftime('%Y-%m-%d %H:%M'))} – "
               f"{_e(r.end.strftime('%Y-%m-%d %H:%M'))} (Asia/Shanghai) · generated {_e(r.generated.strftime('%Y-%m-%d %H:%M'))}</p>")
    dw, rw = r.dispatch["within_target"], r.response["within_target"]
    out.append("<div class='kpis'>"
               f"<div class='kpi'><b>{len(r.incidents)}</b>incidents</div>"
               f"<div class='kpi'><b>{_pct(dw)} {_verdict(None if dw is None else dw >= T['dispatch']['share'])}</b>dispatched ≤ {DISPATCH.seconds:.0f} s (target {100 * (DISPATCH.share or 0):.0f} %)</div>"
               f"<div class='kpi'><b>{_pct(rw)} {_verdict(None if rw is None else rw >= T['response']['share'])}</b>on scene ≤ {RESPONSE.seconds:.0f} s (target {100 * (RESPONSE.share or 0):.0f} %)</div>"
               f"<div class='kpi'><b>{_s(r.p1_mean_s)} {_verdict(None if r.p1_mean_s is None else RESPONSE_P1_MEAN.met_by(r.p1_mean_s))}</b>priority 1 mean (target {RESPONSE_P1_MEAN.seconds / 60:.0f} min)</div></div>")
    out.append("<h2>Response times</h2><table><tr><th></th><th>n</th><th>p50</th><th>p90</th><th>p95</th><th>within target</th></tr>")
    for label, d in (("dispatch (created → ordered)", r.dispatch), ("response (ordered → on scene)", r.response)):
        out.append(f"<tr><th>{label}</th><td>{d['count']}</td><td>{_s(d['p50_s'])}</td><td>{_s(d['p90_s'])}</td><td>{_s(d['p95_s'])}</td><td>{_pct(d['within_target'])}</td></tr>")
    out.append("</table>")

    out.append("<h2>Coverage</h2>")
    c = r.coverage
    if c is None:
        out.append("<p class='empty'>no unit status changes sampled in this period</p>")
    else:
        out.append("<table><tr><th>villages within … of an available ambulance (time-weighted)</th><th>8 min</th><th>12 min</th><th>15 min</th>"
                   "<th>lowest 15 min</th></tr>"
                   f"<tr><td>over {c['hours']:.1f} h</td><td>{_pct(c['within_8'])}</td><td>{_pct(c['within_12'])}</td>"
                   f"<td>{_pct(c['within_15'])}</td><td>{_pct(c['worst_within_15'])}</td></tr></table>")

    f = r.first_responders
    out.append("<h2>Village doctors as first responders</h2>")
    if f is None or not f.alerted:
        out.append("<p class='empty'>No village doctor was alerted.</p>")
    else:
        def minutes(s: float | None) -> str:
            return "–" if s is None else f"{s / 60:.1f} min"

        out.append("<table><tr><th>alerted</th><th>accepted</th><th>on scene</th><th>before the ambulance</th>"
                   "<th>ahead by (median)</th><th>ahead by (p90)</th><th>lead over all both reached (median)</th></tr>"
                   f"<tr><td>{f.alerted}</td><td>{f.accepted}</td><td>{f.arrived}</td>"
                   f"<td class='fr-first'>{f.first} ({_pct(f.first / f.arrived if f.arrived else None)})</td>"
                   f"<td class='fr-ahead-median'>{minutes(f.ahead_median_s)}</td><td class='fr-ahead-p90'>{minutes(f.ahead_p90_s)}</td>"
                   f"<td>{minutes(f.median_lead_s)} over {f.both_arrived}</td></tr></table>")

    out.append("<h2>Incidents</h2>")
    if not r.incidents:
        out.append("<p class='empty'>No incidents.</p>")
    for i in r.incidents:
        who = i["person_id"] or i["station_id"] or ""
        out.append(f"<h3>{_e(i['incident_id'])} · {_e(i['kind'])} · P{_e(i['priority'])} · {_e(i['town'] or '')} {_e(who)} — {_e(i['state'])}"
                   f"{' / ' + _e(i['loop_stage']) if i['loop_stage'] else ''}</h3>"
                   f"<p>created {_t(i['created_at'])} · dispatch {_s(i['dispatch_s'])} {_verdict(None if i['dispatch_s'] is None else DISPATCH.met_by(i['dispatch_s']))}"
                   f" · response {_s(i['response_s'])} {_verdict(None if i['response_s'] is None else RESPONSE.met_by(i['response_s']))}</p>")
        rows = r.timelines.get(i["incident_id"], [])
        if rows:
            out.append("<table class='tl'><tr><th>time</th><th>source</th><th>action</th><th>actor</th><th>unit</th><th>detail</th></tr>")
            for e in rows:
                detail = e["detail"] or {}
                out.append(f"<tr><td>{_t(e['at'])}</td><td>{_e(e['source'])}</td><td>{_e(e['action'])}</td><td>{_e(e['actor'])}</td>"
                           f"<td>{_e(e['unit_id'])}</td><td>{_e(', '.join(f'{k}={v}' for k, v in detail.items()))}</td></tr>")
            out.append("</table>")

    out.append("<h2>Water exceedances</h2>")
    if r.exceedances:
        out.append("<table><tr><th>station</th><th>parameter</th><th>class / target</th><th>graded from</th><th>from</th><th>cleared</th><th>incident</th><th>close-out</th></tr>")
        for x in r.exceedances:
            stage = x["loop_stage"] or ("no incident" if not x["incident_id"] else x["incident_state"])
            # What the class covers: the station's hourly uploads name their graded parameters.
            source = "hourly uploads" if x.get("alarm_type") == "water_hourly_exceeded" else "real-time readings"
            covers = f"{source}: {', '.join(x['covers'])}" if x.get("covers") else source
            klass = f"≥ {x['class']}" if x.get("at_least") else x["class"]
            out.append(f"<tr><td>{_e(x['station_id'])} {_e(x['name'])}</td><td>{_e(x['parameter'])}</td><td>{_e(klass)} / {_e(x['target_class'])}</td><td>{_e(covers)}</td>"
                       f"<td>{_t(x['first_seen'])}</td><td>{_t(x['cleared_at']) or 'open'}</td><td>{_e(x['incident_id'])}</td><td>{_e(stage)}</td></tr>")
        out.append("</table>")
    else:
        out.append("<p class='empty'>No exceedances.</p>")

    out.append("<h2>Silent devices</h2>")
    if r.silent:
        out.append("<table><tr><th>device</th><th>person</th><th>silent since</th><th>back</th><th>state</th></tr>")
        for s in r.silent:
            out.append(f"<tr><td>{_e(s['source_kind'])} {_e(s['source_id'])}</td><td>{_e(s['person_id'])}</td><td>{_t(s['first_seen'])}</td>"
                       f"<td>{_t(s['cleared_at']) or 'still silent'}</td><td>{_e(s['state'])}</td></tr>")
        out.append("</table>")
    else:
        out.append("<p class='empty'>No silent devices.</p>")

    out.append("<h2>Escalations to the control room</h2>")
    if r.escalations:
        out.append("<table><tr><th>alarm</th><th>person</th><th>raised</th><th>reached control room</th><th>acknowledged</th><th>state</th></tr>")
        for a in r.escalations:
            out.append(f"<tr><td>{_e(a['alarm_id'])} {_e(a['alarm_type'])} ({_e(a['severity'])})</td><td>{_e(a['person_id'])}</td><td>{_t(a['first_seen'])}</td>"
                       f"<td>{_t(a['reached_at'])}</td><td>{_t(a['acked_at'])} {_e(a['acked_by'])}</td><td>{_e(a['state'])}</td></tr>")
        out.append("</table>")
    else:
        out.append("<p class='empty'>No escalations reached the control room.</p>")
    out.append("</body></html>")
    return "\n".join(out)


# --- PDF ---------------------------------------------------------------------------------------


def chromium() -> str:
    for c in CHROMIUM_CANDIDATES:
        if Path(c).exists():
            return c
    found = shutil.which("chromium") or shutil.which("google-chrome")
    if not found:
        raise ReportError("no Chromium to print the PDF with: apt-get install -y chromium")
    return found


def print_pdf(html_path: Path, pdf_path: Path, timeout: float = 120) -> None:
    with tempfile.TemporaryDirectory(prefix="wp-report-") as profile:
        result = subprocess.run(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}", "--no-pdf-header-footer",
             f"--print-to-pdf={pdf_path}", html_path.resolve().as_uri()],
            capture_output=True, text=True, timeout=timeout, check=False,
        )
    if result.returncode != 0 or not pdf_path.is_file() or pdf_path.stat().st_size == 0:
        raise ReportError(f"Chromium could not print {html_path}: {result.stderr[-2000:]}")


def build(
    database_url: str, day_from: date, day_to: date, out_dir: Path, *, region: RegionSettings, pdf: bool = True
) -> tuple[Path, Path | None]:
    start, end = window(day_from, day_to)
    with psycopg.connect(database_url) as conn:
        data = collect(conn, start, end)
        # The report names persons and their alarms: a read of their data, logged like the
        # control room's (the report's reader is the shift, hence the account name).
        persons = {i["person_id"] for i in data.incidents} | {a["person_id"] for a in (*data.silent, *data.escalations)}
        conn.execute(
            "INSERT INTO access_log (at, username, person_id, what) SELECT %s, 'shift-report', p, 'shift report' "
            "FROM unnest(%s::text[]) AS p",
            (datetime.now(TZ), sorted(p for p in persons if p)),
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"report-{day_from.isoformat()}_{day_to.isoformat()}"
    html_path = out_dir / f"{stem}.html"
    html_path.write_text(render_html(data, region), encoding="utf-8")
    pdf_path = None
    if pdf:
        pdf_path = out_dir / f"{stem}.pdf"
        print_pdf(html_path, pdf_path)
    return html_path, pdf_path
