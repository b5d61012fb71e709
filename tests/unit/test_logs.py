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
