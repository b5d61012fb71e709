"""The corpus of bad registry files: each is refused with exactly the problems its
`.expected` file lists, each at its line, in the order of the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchpost.registry import read_registry, validate
from watchpost.registry_check import Known, line_map, line_of, with_lines

CORPUS = Path(__file__).parents[1] / "fixtures" / "registry-bad"
FILES = sorted(p for p in CORPUS.iterdir() if not p.name.endswith(".expected"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_problem_of_a_bad_file_is_reported_with_its_line(path: Path) -> None:
    registry = read_registry(path)
    expected = (path.parent / f"{path.name}.expected").read_text(encoding="utf-8").splitlines()
    assert with_lines(validate(registry.doc), registry.lines, path.name) == expected


def test_the_corpus_covers_values_ranges_thresholds_references_and_duplicates() -> None:
    reported = "\n".join((CORPUS / f"{p.name}.expected").read_text() for p in FILES)
    for phrase in ("outside -90..90", "must be a number of degrees", "is not one of ambulance", "water quality class 1-5",
                   "seconds above 0", "expected an integer, got 'fast'", "within 50-100 %", "is not in persons",
                   "is not in facilities", "is not in partners", "duplicate station_id", "already a broker account of"):
        assert phrase in reported, phrase


def test_a_reference_may_name_a_record_the_database_holds() -> None:
    doc = {"units": [{"unit_id": "AMB-9", "kind": "ambulance", "name": "nine", "base_facility_id": "ST-1"}],
           "users": [{"username": "f", "display_name": "F", "role": "family", "persons": [{"person_id": "P-1"}]}]}
    assert len(validate(doc)) == 2
    assert validate(doc, Known({"facilities": frozenset({"ST-1"}), "persons": frozenset({"P-1"})})) == []


def test_an_id_the_database_holds_as_another_kind_of_device_is_refused() -> None:
    doc = {"persons": [{"person_id": "AMB-01", "name": "n", "lat": 30.0, "lon": 120.0}]}
    [problem] = validate(doc, Known({"units": frozenset({"AMB-01"})}))
    assert problem == "persons[0].person_id: 'AMB-01' is already a broker account of units in the database"


def test_a_problem_is_placed_at_its_most_precise_known_line() -> None:
    lines = line_map("persons:\n  - person_id: P-1\n    lat: 91\n    home_sensors:\n      - {sensor_id: a, kind: x}\n")
    assert line_of("persons[0].lat: 91 is outside", lines) == 3
    assert line_of("persons[0].home_sensors[0].kind: 'x' is not", lines) == 5
    assert line_of("persons[0] (P-1).thresholds.x: wrong", lines) == 2  # no thresholds line: the record's
    assert line_of("persons: must be a list", lines) == 1
    assert line_of("nothing like a path", lines) is None


def test_a_file_that_is_not_yaml_gives_no_lines_rather_than_failing() -> None:
    assert line_map("persons: [unclosed") == {}
