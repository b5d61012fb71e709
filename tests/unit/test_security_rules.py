"""The pure rules behind the API's hardening: the login delay, token revocation, and what
a family member sees of an incident."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboard.auth import AuthError, Principal, Role, check_current, issue_token, login_delay, read_token
from dashboard.privacy import family_incident

NOW = datetime.now(UTC)  # PyJWT checks "iat" against the real clock
SECRET = "a-test-secret-long-enough-for-hs256-signing"


def test_logins_wait_only_after_the_free_attempts_and_the_wait_doubles_up_to_the_maximum() -> None:
    waits = [login_delay(n, 5, timedelta(minutes=15)).total_seconds() for n in range(1, 12)]
    assert waits == [0, 0, 0, 0, 15, 30, 60, 120, 240, 480, 900]
    assert login_delay(10_000, 5, timedelta(minutes=15)) == timedelta(minutes=15)


def test_a_token_stops_working_when_the_users_version_or_role_changes_or_the_user_is_gone() -> None:
    claims = read_token(SECRET, issue_token(SECRET, Principal("op1", Role.OPERATOR, 3), NOW, timedelta(hours=1)), NOW)
    assert check_current(claims, ("operator", 3)) == Principal("op1", Role.OPERATOR, 3)
    for current in (("operator", 4), ("family", 3), None):
        with pytest.raises(AuthError, match="revoked"):
            check_current(claims, current)


def test_family_sees_that_help_is_coming_and_its_eta_but_no_fleet_data() -> None:
    event = {
        "incident_id": "INC-000001", "person_id": "P-0001", "state": "dispatched", "kind": "medical", "priority": 1,
        "unit_id": "AMB-03", "decision": {"chosen": {"unit_id": "AMB-03", "eta_s": 412.0, "gps_age_s": 3},
                                          "candidates": [{"unit_id": "AMB-07", "eta_s": 600.0}]},
    }
    view = family_incident(event)
    assert view == {"incident_id": "INC-000001", "person_id": "P-0001", "state": "dispatched", "kind": "medical",
                    "priority": 1, "help_on_the_way": True, "eta_s": 412.0}
    assert "AMB" not in str(view)
    assert family_incident({"incident_id": "INC-000002", "state": "new"}) == {
        "incident_id": "INC-000002", "state": "new", "help_on_the_way": False}
