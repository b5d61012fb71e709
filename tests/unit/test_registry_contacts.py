"""A family contact's channels are checked when the registry is loaded: a phone in E.164
for SMS and calls, known channels, and a voice delay inside the step's timeout."""

from __future__ import annotations

from watchpost.registry import validate


# The person the contact looks after (a link must name a person of the file or the database).
PERSON = {"person_id": "P1", "name": "Wang Lan", "lat": 30.84, "lon": 120.93}


def user(**fields: object) -> dict:
    return {"persons": [PERSON], "users": [{"username": "fam1", "display_name": "Wang Jun", "role": "family", **fields}]}


def test_a_contact_with_a_phone_sms_and_voice_is_valid() -> None:
    doc = user(phone="+8613800000001", persons=[{"person_id": "P1", "channels": ["app", "sms", "voice"], "voice_after_s": 45}])
    assert validate(doc) == []


def test_sms_and_voice_need_a_phone() -> None:
    assert "sms and voice need the user's phone" in "\n".join(validate(user(persons=[{"person_id": "P1", "channels": ["sms"]}])))


def test_a_phone_must_be_e164() -> None:
    assert "users[0].phone: must be an E.164 number" in "\n".join(validate(user(phone="138 0000 0001")))


def test_unknown_or_repeated_channels_are_refused() -> None:
    problems = "\n".join(validate(user(phone="+8613800000001", persons=[{"person_id": "P1", "channels": ["fax", "sms"]},
                                                                        {"person_id": "P2", "channels": ["sms", "sms"]}])))
    assert "persons[0].channels" in problems and "persons[1].channels" in problems


def test_the_call_must_come_before_the_step_times_out() -> None:
    doc = user(phone="+8613800000001", persons=[{"person_id": "P1", "channels": ["voice"], "ack_timeout_s": 60, "voice_after_s": 60}])
    assert "voice_after_s: must be seconds from 0 up to (not including) ack_timeout_s (60)" in "\n".join(validate(doc))


def test_a_partners_duty_phone_is_optional_and_must_be_e164() -> None:
    partner = {"partner_id": "qingpu", "name": "Qingpu District"}
    assert validate({"partners": [partner]}) == []
    assert validate({"partners": [{**partner, "duty_phone": "+862159720001"}]}) == []
    assert validate({"partners": [{**partner, "duty_phone": "021-5972 0001"}]}) == [
        "partners[0].duty_phone: must be an E.164 number like +862100000000"]
