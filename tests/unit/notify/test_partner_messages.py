"""What a partner district's duty contact reads and hears when its desk has not answered
our CAP alert."""

from __future__ import annotations

from datetime import UTC, datetime

from notify.messages import AlarmFacts, Sender, partner_sms_text, partner_voice_script

SENDER = Sender("嘉善守望", "Watchpost", "嘉善", "Jiashan")


def facts(parameter: str | None = "nh3n_mg_l") -> AlarmFacts:
    return AlarmFacts(42, "Taipu River at 东蔡大桥", "water_hourly_exceeded", datetime(2026, 11, 30, 1, 5, tzinfo=UTC), "Yaozhuang",
                      parameter=parameter)


def test_the_partners_sms_names_the_section_the_parameter_the_time_and_asks_for_the_cap_answer() -> None:
    text = partner_sms_text(facts(), SENDER)
    assert text.startswith("【嘉善守望】嘉善跨界断面") and "/ Jiashan:" in text
    assert "跨界断面Taipu River at 东蔡大桥" in text and "09:05" in text  # China Standard Time
    assert "NH3-N" in text and "水质超标（小时数据）" in text and "CAP" in text and "42" in text
    assert "awaits your acknowledgement" in text


def test_the_partners_call_offers_heard_repeat_and_callback() -> None:
    zh, en = partner_voice_script(facts(parameter=None), SENDER)
    assert "请按1" in zh and "请按2" in zh and "请按9" in zh
    assert "Press 1 if you have heard this" in en and "NH3-N" not in en
