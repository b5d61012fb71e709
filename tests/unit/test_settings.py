from __future__ import annotations

from pathlib import Path

import pytest

from kernel.settings import MqttEndpoint, SettingsError, load_settings


def test_defaults_need_no_environment() -> None:
    s = load_settings({})
    assert s.topic_root == "jiashan" and s.ingest.batch_max_messages == 5000


def test_environment_overrides_toml_and_nested_sections_use_double_underscores(tmp_path: Path) -> None:
    toml = tmp_path / "w.toml"
    toml.write_text('topic_root = "test"\n[ingest]\nbatch_max_messages = 100\nbatch_max_wait_s = 0.2\n')
    s = load_settings({"WATCHPOST_INGEST__BATCH_MAX_MESSAGES": "300"}, toml)
    assert (s.topic_root, s.ingest.batch_max_messages, s.ingest.batch_max_wait_s) == ("test", 300, 0.2)


def test_unknown_setting_is_an_error_that_names_it() -> None:
    with pytest.raises(SettingsError, match="ingest.batch_size"):
        load_settings({"WATCHPOST_INGEST__BATCH_SIZE": "1"})


def test_malformed_number_says_what_was_expected() -> None:
    with pytest.raises(SettingsError, match="ingest.batch_max_messages: must be an integer"):
        load_settings({"WATCHPOST_INGEST__BATCH_MAX_MESSAGES": "many"})


def test_mqtt_url_carries_credentials() -> None:
    e = MqttEndpoint.parse("mqtt://watchpost-ingest:p%40ss@broker:1884")
    assert (e.host, e.port, e.username, e.password, e.tls) == ("broker", 1884, "watchpost-ingest", "p@ss", False)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"WATCHPOST_INGEST__BATCH_MAX_MESSAGES": "0", "WATCHPOST_TYPO": "1", "WATCHPOST_LOG_LEVEL": "loud"})
    message = str(info.value)
    assert "typo: unknown setting" in message
    assert "ingest.batch_max_messages: must be at least 1" in message
    assert "log_level: must be DEBUG" in message


def test_the_configuration_reference_in_docs_is_current() -> None:
    from kernel.settings import reference

    path = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
    assert path.read_text() == reference(), "regenerate it: watchpost config reference > docs/configuration.md"
