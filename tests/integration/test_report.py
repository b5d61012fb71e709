"""The daily shift report: built from a seeded day, rendered to HTML and printed to PDF by
headless Chromium; the PDF's pages are turned into images with pdftoppm and kept in
test-artifacts/report/."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from dashboard import report
from kernel.settings import RegionSettings
from tests.integration.test_trends import seed_trends

pytestmark = pytest.mark.slow
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "report"


def test_shift_report_html_and_pdf(jiashan_url: str, tmp_path: Path) -> None:
    # Noon local time: every seeded incident (1-4 h before) falls on the same local day.
    now = datetime.now(report.TZ).replace(hour=12, minute=0, second=0, microsecond=0).astimezone(UTC)
    seed_trends(jiashan_url, now)
    with psycopg.connect(jiashan_url) as conn:
        conn.execute(
            """INSERT INTO alarms (source_kind, source_id, alarm_type, severity, state, person_id, first_seen, last_seen)
               VALUES ('device', 'elder:P-0003', 'device_silent', 'minor', 'active', 'P-0003', %s, %s)""",
            (now - timedelta(hours=2), now - timedelta(hours=2)),
        )
        [(aid,)] = conn.execute(
            """INSERT INTO alarms (source_kind, source_id, alarm_type, severity, state, person_id, first_seen, last_seen,
                                   acked_at, acked_by, control_room, cleared_at)
               VALUES ('person', 'P-0002', 'fall_uncancelled', 'critical', 'cleared', 'P-0002', %s, %s, %s, 'op1', true, %s)
               RETURNING alarm_id""",
            (now - timedelta(hours=4), now - timedelta(hours=3), now - timedelta(minutes=200), now - timedelta(hours=3)),
        ).fetchall()
        conn.execute(
            """INSERT INTO alarm_audit (alarm_id, at, action, actor, detail) VALUES
               (%(a)s, %(t0)s, 'raised', 'rule:fall_uncancelled', '{}'),
               (%(a)s, %(t1)s, 'escalated', 'timer', '{"notify": ["control_room"]}')""",
            {"a": aid, "t0": now - timedelta(hours=4), "t1": now - timedelta(minutes=238)},
        )
        conn.execute("INSERT INTO incident_alarms (incident_id, alarm_id) VALUES ('INC-T0002', %s)", (aid,))
    day = now.astimezone(report.TZ).date()

    html_path, pdf_path = report.build(jiashan_url, day, day, tmp_path, region=RegionSettings())
    text = html_path.read_text()
    for needle in ("INC-T0001", "INC-T0002", "INC-T0003", "on_scene", "fall_uncancelled", "escalated",
                   "WS-003", "nh3n_mg_l", "verified", "elder:P-0003", "still silent", "67 %"):
        assert needle in text, needle
    assert pdf_path is not None and pdf_path.read_bytes().startswith(b"%PDF")
    with psycopg.connect(jiashan_url) as conn:  # the persons the report names: a logged read
        logged = {r[0] for r in conn.execute("SELECT person_id FROM access_log WHERE username = 'shift-report'")}
    assert {"P-0002", "P-0003"} <= logged

    pdftoppm = shutil.which("pdftoppm")
    assert pdftoppm, "pdftoppm is missing: apt-get install -y poppler-utils"
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    shutil.copy(html_path, ARTIFACTS / html_path.name)
    shutil.copy(pdf_path, ARTIFACTS / pdf_path.name)
    subprocess.run([pdftoppm, "-png", "-r", "80", str(pdf_path), str(ARTIFACTS / "page")], check=True, timeout=120)
    pages = sorted(ARTIFACTS.glob("page-*.png"))
    assert pages and all(p.stat().st_size > 5000 for p in pages)

    # An empty range still renders, and a reversed one is refused.
    empty_html, _ = report.build(jiashan_url, day - timedelta(days=400), day - timedelta(days=400), tmp_path, region=RegionSettings(), pdf=False)
    assert "No incidents." in empty_html.read_text()
    with pytest.raises(report.ReportError):
        report.build(jiashan_url, day, day - timedelta(days=1), tmp_path, region=RegionSettings())
