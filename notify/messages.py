"""What a family member reads and hears: who, what, when, where — in Mandarin and English.

Pure. Times are shown in China Standard Time (the county's), whatever the server's zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

__all__ = ["AlarmFacts", "sms_text", "voice_script"]

CST = timezone(timedelta(hours=8), "CST")

_WHAT_ZH = {
    "fall": "跌倒", "sos": "紧急呼叫", "emergency": "紧急情况", "smoke": "烟雾报警", "gas": "燃气报警",
    "water_leak": "漏水报警", "heart_rate": "心率异常", "spo2": "血氧过低", "inactivity": "长时间无活动",
    "out_of_bed": "夜间离床", "door_open": "夜间门未关",
}
_WHAT_EN = {
    "fall": "a fall", "sos": "an SOS call", "emergency": "an emergency", "smoke": "a smoke alarm", "gas": "a gas alarm",
    "water_leak": "a water leak", "heart_rate": "an abnormal heart rate", "spo2": "low blood oxygen",
    "inactivity": "no movement for hours", "out_of_bed": "out of bed at night", "door_open": "a door open at night",
}


@dataclass(frozen=True, slots=True)
class AlarmFacts:
    alarm_id: int
    person_name: str
    alarm_type: str
    at: datetime
    address: str | None


def _when(at: datetime) -> str:
    return at.astimezone(CST).strftime("%H:%M")


def sms_text(facts: AlarmFacts, link: str) -> str:
    """The SMS: Chinese first, a short English line, and the family page's link (where
    "I'm on my way" is one tap)."""
    what_zh = _WHAT_ZH.get(facts.alarm_type, facts.alarm_type)
    what_en = _WHAT_EN.get(facts.alarm_type, facts.alarm_type)
    where = facts.address or "家中"
    return (
        f"【Watchpost】{facts.person_name}于{_when(facts.at)}发生{what_zh}，地点：{where}。"
        f"请尽快确认：{link} "
        f"/ {facts.person_name}: {what_en} at {_when(facts.at)}. Tap to confirm: {link}"
    )


def voice_script(facts: AlarmFacts) -> tuple[str, str]:
    """What the call says (Mandarin, then English), before the keypad menu."""
    what_zh = _WHAT_ZH.get(facts.alarm_type, facts.alarm_type)
    what_en = _WHAT_EN.get(facts.alarm_type, facts.alarm_type)
    where = facts.address or "家中"
    zh = (
        f"这里是Watchpost紧急通知。{facts.person_name}于{_when(facts.at)}发生{what_zh}，地点：{where}。"
        "如果您正在赶去，请按1。重听请按2。需要控制中心联系您，请按9。"
    )
    en = (
        f"This is Watchpost. {facts.person_name} had {what_en} at {_when(facts.at)}, at {facts.address or 'home'}. "
        "Press 1 if you are on your way. Press 2 to hear this again. Press 9 to be called by the control room."
    )
    return zh, en
