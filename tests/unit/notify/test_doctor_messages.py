"""What a first-aid post's village doctor reads and hears, and how the keypad answers."""

from __future__ import annotations

from datetime import UTC, datetime

from notify.messages import DoctorFacts, Sender, doctor_sms_text, doctor_voice_script
from notify.outcomes import Outcome, State
from notify.sms import segments

FACTS = DoctorFacts("INC-000042", "王兰", "魏塘街道东港村12号", 30.84, 120.93, "medical", "跌倒，头部出血", ("房颤",), ("华法林 3mg",),
                    14 * 60 + 20, datetime(2026, 3, 1, 19, 5, tzinfo=UTC))
LINK = "https://watchpost.example.cn/first-aid?incident=INC-000042"
SENDER = Sender("嘉善守望", "Watchpost", "嘉善", "Jiashan")


def test_the_sms_says_who_where_what_history_and_the_ambulance_eta_in_chinese_in_at_most_three_parts() -> None:
    text = doctor_sms_text(FACTS, LINK, SENDER)
    assert text.startswith("【嘉善守望】急救 03:05 王兰，魏塘街道东港村12号，跌倒，头部出血。")  # China time
    assert "病史：房颤。用药：华法林 3mg。救护车约14分钟到。" in text and text.endswith(LINK)
    assert len(segments(text, 1)) <= 3


def test_without_an_address_the_fix_is_given_and_without_an_ambulance_it_says_so() -> None:
    bare = DoctorFacts("INC-1", None, None, 30.84, 120.93, "medical", None, (), (), None, FACTS.at)
    text = doctor_sms_text(bare, LINK, SENDER)
    assert "患者，30.84000,120.93000，急症。" in text and "暂无救护车" in text and "病史" not in text


def test_the_call_offers_accept_decline_and_repeat() -> None:
    zh, en = doctor_voice_script(FACTS, SENDER)
    assert "接单请按1，不能前往请按2，重听请按0。" in zh and "Press 1 to accept. Press 2 if you cannot go." in en


def test_the_doctors_answer_is_the_last_final_key_pressed() -> None:
    assert Outcome(State.ANSWERED, keypad=("0", "2")).doctor_answer() == "2"
    assert Outcome(State.ANSWERED, keypad=("1",)).doctor_answer() == "1"
    assert Outcome(State.NO_ANSWER, keypad=("0",)).doctor_answer() is None
