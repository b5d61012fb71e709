"""SMS text as SMPP sends it: UCS-2 (data_coding 8), split with a concatenation header.

Pure. One SMS carries 140 octets: 70 UCS-2 characters, or 67 per part when a six-octet
user data header (UDH: IEI 0x00, 8-bit reference, total, sequence) says how the parts join.
A character outside the Basic Multilingual Plane takes two UTF-16 code units; a part never
ends between them, so no handset shows half an emoji or a rare hanzi.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["UCS2", "SINGLE_OCTETS", "PART_OCTETS", "Segment", "segments"]

UCS2 = 8  # SMPP data_coding: ISO/IEC-10646 UCS-2 (UTF-16BE on every SMSC met in practice)
SINGLE_OCTETS = 140
_UDH_OCTETS = 6
PART_OCTETS = SINGLE_OCTETS - _UDH_OCTETS  # 134 octets: 67 UCS-2 characters
MAX_PARTS = 255


@dataclass(frozen=True, slots=True)
class Segment:
    """One submit_sm's short_message; `udh` set means esm_class 0x40 (UDHI)."""

    payload: bytes
    udh: bool


def segments(text: str, reference: int) -> list[Segment]:
    """`text` as the short messages to submit, in order; `reference` (0-255) ties the parts
    of one message together on the handset."""
    encoded = text.encode("utf-16-be")
    if len(encoded) <= SINGLE_OCTETS:
        return [Segment(encoded, udh=False)]
    chunks: list[bytes] = []
    start = 0
    while start < len(encoded):
        end = min(start + PART_OCTETS, len(encoded))
        if end < len(encoded) and 0xD8 <= encoded[end - 2] <= 0xDB:
            end -= 2  # the part would end on a high surrogate: keep the pair together
        chunks.append(encoded[start:end])
        start = end
    if len(chunks) > MAX_PARTS:
        raise ValueError(f"an SMS of {len(text)} characters needs {len(chunks)} parts; at most {MAX_PARTS} can be joined")
    ref = reference & 0xFF
    return [
        Segment(bytes((0x05, 0x00, 0x03, ref, len(chunks), i + 1)) + chunk, udh=True) for i, chunk in enumerate(chunks)
    ]
