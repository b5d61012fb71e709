from __future__ import annotations

import logging

import orjson

from kernel.logs import JsonFormatter


def test_json_logs_keep_ids_passed_as_extra_as_fields() -> None:
    record = logging.LogRecord("ingest.alarm_store", logging.INFO, __file__, 1, "alarm raised %s", ("sos",), None)
    record.alarm_id = 42
    record.incident_id = "INC-000007"
    line = orjson.loads(JsonFormatter().format(record))
    assert line["msg"] == "alarm raised sos" and line["level"] == "INFO" and line["logger"] == "ingest.alarm_store"
    assert (line["alarm_id"], line["incident_id"]) == (42, "INC-000007")
    assert line["ts"].endswith("+00:00")


def test_tokens_are_redacted_and_phone_numbers_masked_in_log_lines() -> None:
    from kernel.logs import redact

    assert redact('"WebSocket /ws/console?token=eyJa.bc.de&last_event_id=3" [accepted]') == (
        '"WebSocket /ws/console?token=[redacted]&last_event_id=3" [accepted]'
    )
    assert redact("Authorization: Bearer abc.def") == "Authorization: Bearer [redacted]"
    assert redact("calling 13812345678") == "calling *******5678"
    assert redact("calling +86 138-1234-5678") == "calling +** ***-****-5678"
    assert redact("alarm 123456789012 at 1764547200, INC-000123") == "alarm 123456789012 at 1764547200, INC-000123"
