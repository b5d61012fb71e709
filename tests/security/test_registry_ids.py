"""Registry ids are broker accounts: they are topic levels, never a platform account's name,
and one id is never two kinds of device (a person id equal to a unit id would share its
password and its ACL patterns)."""

from __future__ import annotations

from watchpost.registry import validate


def test_a_reserved_or_malformed_or_cross_kind_id_is_rejected() -> None:
    doc = {
        "persons": [{"person_id": "watchpost-ingest-1"}, {"person_id": "AMB-01"}, {"person_id": "P/+"}],
        "units": [{"unit_id": "AMB-01"}],
    }
    problems = "\n".join(validate(doc))
    assert "'watchpost-ingest-1' takes the 'watchpost-' prefix" in problems
    assert "'P/+' must be" in problems
    assert "'AMB-01' is already a broker account of" in problems
