"""What a family member reads and hears: who, what, when, where — in Mandarin and English;
and what a village doctor alerted as first responder reads and hears.

Pure. Times are shown in China Standard Time (the county's), whatever the server's zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

__all__ = ["AlarmFacts", "DoctorFacts", "Sender", "doctor_sms_text", "doctor_voice_script", "partner_sms_text", "partner_voice_script", "sms_text",
           "voice_script"]

CST = timezone(timedelta(hours=8), "CST")


@dataclass(frozen=True, slots=True)
class Sender:
    """Who a message says it is from. `name_zh` is the SMS signature, 【…】 at the start of
    every SMS: Chinese carriers deliver only signatures registered with them, so a deployment
    sets its registered one (the region's service name, `region.app_name_zh`); the calls say
    the same name. `county_*` names the county to a partner district."""

    name_zh: str
    name_en: str
    county_zh: str
    county_en: str

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


_WATER_ZH = {"water_class_exceeded": "水质超标（实时数据）", "water_hourly_exceeded": "水质超标（小时数据）"}
_WATER_EN = {"water_class_exceeded": "water worse than its target class (real-time readings)",
             "water_hourly_exceeded": "water worse than its target class (hourly data)"}
_PARAMETER = {"nh3n_mg_l": "NH3-N", "codmn_mg_l": "CODMn", "cod_mg_l": "COD", "tp_mg_l": "TP", "tn_mg_l": "TN",
              "do_mg_l": "DO", "ph": "pH"}


@dataclass(frozen=True, slots=True)
class AlarmFacts:
    alarm_id: int
    person_name: str  # for a station's alarm, the station's name
    alarm_type: str
    at: datetime
    address: str | None  # for a station, its town
    parameter: str | None = None  # a water alarm's deciding parameter


def _when(at: datetime) -> str:
    return at.astimezone(CST).strftime("%H:%M")


def sms_text(facts: AlarmFacts, link: str, sender: Sender) -> str:
    """The SMS: Chinese first, a short English line, and the family page's link (where
    "I'm on my way" is one tap)."""
    what_zh = _WHAT_ZH.get(facts.alarm_type, facts.alarm_type)
    what_en = _WHAT_EN.get(facts.alarm_type, facts.alarm_type)
    where = facts.address or "家中"
    return (
        f"【{sender.name_zh}】{facts.person_name}于{_when(facts.at)}发生{what_zh}，地点：{where}。"
        f"请尽快确认：{link} "
        f"/ {facts.person_name}: {what_en} at {_when(facts.at)}. Tap to confirm: {link}"
    )


def voice_script(facts: AlarmFacts, sender: Sender) -> tuple[str, str]:
    """What the call says (Mandarin, then English), before the keypad menu."""
    what_zh = _WHAT_ZH.get(facts.alarm_type, facts.alarm_type)
    what_en = _WHAT_EN.get(facts.alarm_type, facts.alarm_type)
    where = facts.address or "家中"
    zh = (
        f"这里是{sender.name_zh}紧急通知。{facts.person_name}于{_when(facts.at)}发生{what_zh}，地点：{where}。"
        "如果您正在赶去，请按1。重听请按2。需要控制中心联系您，请按9。"
    )
    en = (
        f"This is {sender.name_en}. {facts.person_name} had {what_en} at {_when(facts.at)}, at {facts.address or 'home'}. "
        "Press 1 if you are on your way. Press 2 to hear this again. Press 9 to be called by the control room."
    )
    return zh, en


# --- the village doctor ------------------------------------------------------------------------

_KIND_ZH = {"medical": "急症", "fire": "火情", "water": "水情"}


@dataclass(frozen=True, slots=True)
class DoctorFacts:
    """What the first-aid post's doctor needs before leaving: who, where, what happened, the
    person's conditions and medications, and when the ambulance will be there."""

    incident_id: str
    person_name: str | None
    address: str | None
    lat: float | None
    lon: float | None
    kind: str
    description: str | None
    conditions: tuple[str, ...]
    medications: tuple[str, ...]
    unit_eta_s: float | None
    at: datetime


def _doctor_where(facts: DoctorFacts) -> str:
    if facts.address:
        return facts.address
    if facts.lat is not None and facts.lon is not None:
        return f"{facts.lat:.5f},{facts.lon:.5f}"
    return "见页面"


def _eta_min(eta_s: float | None) -> int | None:
    return None if eta_s is None else max(1, round(eta_s / 60))


def doctor_sms_text(facts: DoctorFacts, link: str, sender: Sender) -> str:
    """Short, Chinese only (a long text is several SMS): who, where, what, conditions and
    medications, the ambulance's ETA, and the page where one tap accepts."""
    parts = [f"【{sender.name_zh}】急救 {_when(facts.at)} {facts.person_name or '患者'}，{_doctor_where(facts)}，"
             f"{facts.description or _KIND_ZH.get(facts.kind, facts.kind)}。"]
    if facts.conditions:
        parts.append(f"病史：{'、'.join(facts.conditions)}。")
    if facts.medications:
        parts.append(f"用药：{'、'.join(facts.medications)}。")
    eta = _eta_min(facts.unit_eta_s)
    parts.append(f"救护车约{eta}分钟到。" if eta is not None else "暂无救护车。")
    parts.append(f"接单/不能前往：{link}")
    return "".join(parts)


def doctor_voice_script(facts: DoctorFacts, sender: Sender) -> tuple[str, str]:
    """The call (Mandarin, then English): the same facts, then the keypad: 1 accept, 2
    decline, 0 repeat — what the page's buttons do."""
    what = facts.description or _KIND_ZH.get(facts.kind, facts.kind)
    eta = _eta_min(facts.unit_eta_s)
    history = "".join([f"病史：{'、'.join(facts.conditions)}。" if facts.conditions else "",
                       f"用药：{'、'.join(facts.medications)}。" if facts.medications else ""])
    zh = (
        f"这里是{sender.name_zh}急救通知。{facts.person_name or '一位患者'}，地点：{_doctor_where(facts)}，{what}。{history}"
        + (f"救护车约{eta}分钟到达。" if eta is not None else "暂无救护车。")
        + "接单请按1，不能前往请按2，重听请按0。"
    )
    en = (
        f"This is {sender.name_en}. You are asked to attend {facts.person_name or 'a patient'} at {_doctor_where(facts)}: {what}. "
        + (f"The ambulance is about {eta} minutes away. " if eta is not None else "No ambulance yet. ")
        + "Press 1 to accept. Press 2 if you cannot go. Press 0 to hear this again."
    )
    return zh, en


def _water(facts: AlarmFacts) -> tuple[str, str]:
    what_zh = _WATER_ZH.get(facts.alarm_type, facts.alarm_type)
    what_en = _WATER_EN.get(facts.alarm_type, facts.alarm_type)
    if facts.parameter:
        name = _PARAMETER.get(facts.parameter, facts.parameter)
        what_zh, what_en = f"{what_zh}，{name}", f"{what_en}, {name}"
    return what_zh, what_en


def partner_sms_text(facts: AlarmFacts, sender: Sender) -> str:
    """The SMS to a partner district's duty contact whose desk has not answered our CAP
    alert: who writes (the county served), which section, what, since when, and what we ask
    (the CAP answer)."""
    what_zh, what_en = _water(facts)
    return (
        f"【{sender.name_zh}】{sender.county_zh}跨界断面{facts.person_name}自{_when(facts.at)}起{what_zh}。"
        f"已发送CAP预警（{facts.alarm_id}），贵方尚未确认，请尽快回复确认。"
        f" / {sender.county_en}: {what_en} at cross-border section {facts.person_name} since {_when(facts.at)}. "
        f"Our CAP alert {facts.alarm_id} awaits your acknowledgement."
    )


def partner_voice_script(facts: AlarmFacts, sender: Sender) -> tuple[str, str]:
    """What the call to a partner's duty contact says (Mandarin, then English)."""
    what_zh, what_en = _water(facts)
    zh = (
        f"这里是{sender.name_zh}跨界水质通知。{sender.county_zh}跨界断面{facts.person_name}自{_when(facts.at)}起{what_zh}。"
        "我方CAP预警尚未收到贵方确认。已知悉请按1。重听请按2。需要我方控制中心联系您，请按9。"
    )
    en = (
        f"This is {sender.name_en}, {sender.county_en}. {what_en} at the cross-border section {facts.person_name} since {_when(facts.at)}. "
        "Our CAP alert has not been acknowledged. Press 1 if you have heard this. Press 2 to hear it again. "
        "Press 9 to be called by our control room."
    )
    return zh, en
