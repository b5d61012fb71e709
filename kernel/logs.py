"""Log output: plain text for a terminal, or one JSON object per line for a log pipeline.

Log calls pass identifiers as `extra` (device, alarm_id, incident_id, unit_id, …); the JSON
format keeps them as fields, so one alarm can be followed from the reading that raised it to
the order that answered it by its ids (see docs/operations.md).

Every line passes `Redact` on its way out, whoever logged it (uvicorn's access lines too):
login tokens (`token=…` in a websocket URL, `Bearer …`, anything shaped like a JWT) are
replaced, and digit runs that look like phone numbers are masked but for their last four
digits (a family contact's number is personal data; the tail is enough to tell two apart)."""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime

import orjson

# Attributes every LogRecord has; anything else on a record came in through `extra`.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}


_TOKEN = re.compile(
    r"(?i)(?<=[?&]token=)[^&\s\"']+"  # a query parameter
    r"|(?i:(?<=bearer )[\w.~+/-]+=*)"  # an Authorization header
    r"|\beyJ[\w-]*\.[\w-]+\.[\w-]*"  # a JWT wherever it appears
)
# Mainland mobiles (+86 optional), landlines with their area code, and any +international
# number; spaces and dashes inside are allowed. Bare digit runs of other lengths (ids,
# counts, epoch seconds) are left alone.
_PHONE = re.compile(
    r"(?<![\w.])(?:(?:\+|00)\d{1,3}[\s-]?)?(?:1[3-9]\d[\s-]?\d{4}[\s-]?\d{4}|0\d{2,3}[\s-]\d{7,8})(?![\w.])"
    r"|(?<![\w.])\+\d[\d\s-]{6,16}\d(?![\w.])"
)


def redact(text: str) -> str:
    """`text` without tokens and with phone numbers masked."""
    text = _TOKEN.sub("[redacted]", text)
    return _PHONE.sub(_mask_phone, text)


def _mask_phone(match: re.Match[str]) -> str:
    digits = sum(c.isdigit() for c in match.group())
    seen = 0
    out = []
    for c in match.group():
        if c.isdigit():
            seen += 1
            out.append(c if seen > digits - 4 else "*")
        else:
            out.append(c)
    return "".join(out)


class Redact(logging.Filter):
    """Rewrites each record's message (and its string `extra` fields) through `redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, redact(value))
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(Redact())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # pika (the AMQP ingest source) logs each step of every connection at INFO; its warnings
    # and errors are what an operator needs, and the source logs its own connections.
    logging.getLogger("pika").setLevel(logging.DEBUG if level.upper() == "DEBUG" else logging.WARNING)
