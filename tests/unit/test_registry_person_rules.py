"""A person's rule thresholds are checked when the registry is loaded, and every problem
names the person and the field."""

from __future__ import annotations

from watchpost.registry import validate


def person(pid: str, **thresholds: object) -> dict:
    return {"person_id": pid, "name": "张桂英", "lat": 30.84, "lon": 120.92, "thresholds": thresholds}


def test_every_bad_threshold_is_reported_with_the_person_and_the_field() -> None:
    doc = {
        "persons": [
            person("P001"),
            person("P002", hr_emergency_low_bpm=45, spo2_low_pct=88, spo2_emergency_low_pct=89),
            person("P003", bed_by="half past ten"),
            person("P004", vitals_sample_interval_s=-600, vitals_confirm_samples=0),
            person("P005", typo_field=1),
        ]
    }
    problems = validate(doc)
    assert not [p for p in problems if "P001" in p]
    assert "persons[1] (P002).thresholds.hr_emergency_low_bpm: 45.0 must be at most hr_low_bpm (40.0)" in problems
    assert "persons[1] (P002).thresholds.spo2_emergency_low_pct: 89.0 must be at most spo2_low_pct (88.0)" in problems
    assert any(p.startswith("persons[2] (P003).thresholds.bed_by: expected a time") for p in problems)
    assert "persons[3] (P004).thresholds.vitals_sample_interval_s: must be >= 0, got -600.0" in problems
    assert "persons[3] (P004).thresholds.vitals_confirm_samples: must be >= 1, got 0" in problems
    assert any(p.startswith("persons[4] (P005).thresholds: unknown field(s) typo_field") for p in problems)


def test_a_person_with_chronic_lung_disease_and_a_night_shift_loads() -> None:
    doc = {"persons": [person("P010", spo2_low_pct=88, spo2_emergency_low_pct=84, bed_by="09:30", up_by="17:00", night_window="08:00-16:00")]}
    assert validate(doc) == []
