"""Scoped users in the registry: a village doctor names a post, a hospital user a hospital,
a crew user a unit; other roles name none."""

from __future__ import annotations

from watchpost.registry import validate

FACILITIES = [
    {"facility_id": "FA-1", "kind": "first_aid_post", "name": "post", "lat": 30.8, "lon": 120.9},
    {"facility_id": "H-1", "kind": "hospital", "name": "hospital", "lat": 30.8, "lon": 120.9},
]
UNITS = [{"unit_id": "AMB-1", "kind": "ambulance", "name": "one"}]


def problems(*users: dict) -> list[str]:
    return validate({"facilities": FACILITIES, "units": UNITS, "users": list(users)})


def test_each_tier_user_names_what_it_serves() -> None:
    assert problems(
        {"username": "doc", "display_name": "d", "role": "first_aid", "scope_id": "FA-1"},
        {"username": "er", "display_name": "e", "role": "hospital", "scope_id": "H-1"},
        {"username": "amb", "display_name": "a", "role": "crew", "scope_id": "AMB-1"},
    ) == []


def test_a_tier_user_without_a_scope_or_with_the_wrong_one_is_refused() -> None:
    [missing] = problems({"username": "doc", "display_name": "d", "role": "first_aid"})
    assert "required for a first_aid user" in missing
    [wrong] = problems({"username": "er", "display_name": "e", "role": "hospital", "scope_id": "FA-1"})
    assert "is a first_aid_post" in wrong
    [unknown] = problems({"username": "amb", "display_name": "a", "role": "crew", "scope_id": "AMB-9"})
    assert "not in units" in unknown


def test_the_control_room_and_families_have_no_scope() -> None:
    [p] = problems({"username": "op", "display_name": "o", "role": "operator", "scope_id": "H-1"})
    assert "only first_aid, hospital and crew" in p


def test_conditions_and_medications_are_lists_of_strings() -> None:
    doc = {"persons": [{"person_id": "P-1", "name": "n", "lat": 30.8, "lon": 120.9, "conditions": "diabetes"}]}
    assert validate(doc) == ["persons[0].conditions: must be a list of strings"]


def test_a_posts_duty_phone_is_an_e164_number_and_only_a_post_has_one() -> None:
    def facility(kind: str, phone: object) -> dict:
        return {"facility_id": "F-1", "kind": kind, "name": "f", "lat": 30.8, "lon": 120.9, "duty_phone": phone}

    assert validate({"facilities": [facility("first_aid_post", "+8613812340069")]}) == []
    assert validate({"facilities": [facility("first_aid_post", "13812340069")]}) == [
        "facilities[0].duty_phone: must be an E.164 number like +8657384000001"]
    assert validate({"facilities": [facility("hospital", "+8613812340069")]}) == [
        "facilities[0].duty_phone: only a first_aid_post has a duty phone"]
