"""How the alert lane is wired: its subscription, the ingest worker's, and its restarts."""

from __future__ import annotations

from ingest.alert_lane import alert_subscriptions
from ingest.mqtt_source import retired_subscriptions, subscriptions
from watchpost.supervisor import restart_delay


def test_the_alert_lane_subscribes_to_the_alert_topic_only() -> None:
    assert alert_subscriptions("jiashan", "watchpost-alerts") == ["$share/watchpost-alerts/jiashan/elder/+/alert"]


def test_ingest_no_longer_takes_alerts_or_receipts() -> None:
    filters = subscriptions("jiashan", "g")
    assert "$share/g/jiashan/elder/+/wearable" in filters
    assert not [f for f in filters if f.endswith(("/elder/#", "/alert", "/receipt"))]
    assert "$share/g/jiashan/elder/#" in retired_subscriptions("jiashan", "g")


def test_a_session_switching_between_plain_and_shared_drops_the_other_form() -> None:
    plain, grouped = subscriptions("jiashan", ""), subscriptions("jiashan", "watchpost-ingest")
    assert set(grouped) <= set(retired_subscriptions("jiashan", ""))
    assert set(plain) <= set(retired_subscriptions("jiashan", "watchpost-ingest"))
    assert not set(plain) & set(retired_subscriptions("jiashan", ""))


def test_the_alert_lane_is_never_backed_off_past_a_second() -> None:
    assert max(restart_delay(n, quick=True) for n in range(100)) <= 1.0
    assert restart_delay(10) == 30.0
