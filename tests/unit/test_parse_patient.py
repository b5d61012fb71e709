"""The crew's patient report (`{root}/unit/{unit_id}/patient`) is validated like all input."""

from __future__ import annotations

import pytest

from ingest.parse import Reason
from ingest.readings import PatientReport
from tests.unit.test_parse import NOW, parse, rejection


def test_a_patient_report_keeps_vitals_gcs_consciousness_and_text() -> None:
    [r] = parse("unit/AMB-1/patient", {
        "ts": NOW.timestamp(), "incident_id": "INC-000001", "hr_bpm": 112, "spo2_pct": 91, "sys_bp": 90, "dia_bp": 55,
        "gcs": 13, "consciousness": "voice", "suspected": "hip fracture", "note": "fell in the kitchen, on warfarin",
    })
    assert isinstance(r, PatientReport)
    assert (r.unit_id, r.incident_id, r.hr_bpm, r.gcs, r.consciousness) == ("AMB-1", "INC-000001", 112.0, 13, "voice")
    assert r.suspected == "hip fracture" and r.ts == NOW


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"gcs": 2}, Reason.OUT_OF_RANGE),
        ({"gcs": 12.5}, Reason.WRONG_TYPE),
        ({"consciousness": "sleepy"}, Reason.WRONG_TYPE),
        ({"note": "x" * 1001}, Reason.WRONG_TYPE),
        ({"suspected": 7}, Reason.WRONG_TYPE),
        ({"hr_bpm": 400}, Reason.OUT_OF_RANGE),
        ({"colour": "pale"}, Reason.UNKNOWN_FIELD),
        ({}, Reason.MISSING_FIELD),
    ],
)
def test_a_bad_patient_report_is_rejected_with_its_reason(payload: dict, reason: Reason) -> None:
    assert rejection("unit/AMB-1/patient", {"ts": NOW.timestamp(), **payload}) is reason


def test_a_patient_report_from_an_unknown_unit_is_rejected() -> None:
    assert rejection("unit/AMB-9/patient", {"ts": NOW.timestamp(), "gcs": 15}) is Reason.UNKNOWN_DEVICE
