"""The simulated village doctors' plans: most accept and drive there by road, slower than an
ambulance; some decline; some never answer."""

from __future__ import annotations

import random
from collections import Counter

from simulators.doctors import DoctorProfile, plan


def test_most_doctors_accept_some_decline_some_never_answer() -> None:
    rng = random.Random(7)
    answers = Counter(plan(rng, 300.0).answer for _ in range(2000))
    assert 0.70 < answers["accepted"] / 2000 < 0.80
    assert 0.07 < answers["declined"] / 2000 < 0.13
    assert 0.12 < answers[None] / 2000 < 0.18


def test_an_accepting_doctor_answers_leaves_the_surgery_and_drives_slower_than_the_platforms_road_time() -> None:
    rng, profile = random.Random(1), DoctorProfile(accept_p=1.0, decline_p=0.0)
    for _ in range(200):
        p = plan(rng, 600.0, profile)
        assert p.answer == "accepted" and 15 <= p.answer_after_s <= 75
        assert p.on_scene_after_s is not None
        drive = p.on_scene_after_s - p.answer_after_s
        assert 60 + 600 * 1.15 <= drive <= 180 + 600 * 1.5


def test_a_doctor_who_declines_or_does_not_answer_never_arrives() -> None:
    rng = random.Random(3)
    assert all(p.on_scene_after_s is None for p in (plan(rng, 300.0) for _ in range(500)) if p.answer != "accepted")
