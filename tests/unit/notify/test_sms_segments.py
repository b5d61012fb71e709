"""UCS-2 SMS segmentation: one part up to 70 characters, then 67-character parts joined by
a six-octet concatenation header; a surrogate pair is never split."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from notify.sms import PART_OCTETS, SINGLE_OCTETS, segments


def joined(parts: list) -> str:
    return b"".join(p.payload[6:] if p.udh else p.payload for p in parts).decode("utf-16-be")


def test_seventy_chinese_characters_fit_one_sms_without_a_header() -> None:
    (only,) = segments("水" * 70, reference=7)
    assert not only.udh and len(only.payload) == SINGLE_OCTETS


def test_seventy_one_characters_take_two_parts_of_sixty_seven_and_four() -> None:
    first, second = segments("跌" * 71, reference=7)
    assert first.payload[:6] == bytes((0x05, 0x00, 0x03, 7, 2, 1))
    assert second.payload[:6] == bytes((0x05, 0x00, 0x03, 7, 2, 2))
    assert len(first.payload) - 6 == PART_OCTETS and len(second.payload) - 6 == 4 * 2


def test_a_part_never_ends_between_the_halves_of_a_surrogate_pair() -> None:
    text = "倒" * 66 + "😀" + "水" * 3
    parts = segments(text, reference=1)
    assert len(parts) == 2
    assert parts[0].payload[6:].decode("utf-16-be") == "倒" * 66
    assert joined(parts) == text


@given(st.text(min_size=0, max_size=600), st.integers(0, 255))
def test_the_parts_join_back_into_the_text(text: str, reference: int) -> None:
    parts = segments(text, reference)
    assert joined(parts) == text
    assert all(len(p.payload) <= SINGLE_OCTETS for p in parts)
    assert len({p.payload[3] for p in parts if p.udh}) <= 1
