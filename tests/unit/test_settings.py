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
    with pytest.raises(SettingsError, match=r"WATCHPOST_INGEST__BATCH_MAX_MESSAGES \(ingest.batch_max_messages\): must be an integer"):
        load_settings({"WATCHPOST_INGEST__BATCH_MAX_MESSAGES": "many"})


def test_mqtt_url_carries_credentials() -> None:
    e = MqttEndpoint.parse("mqtt://watchpost-ingest:p%40ss@broker:1884")
    assert (e.host, e.port, e.username, e.password, e.tls) == ("broker", 1884, "watchpost-ingest", "p@ss", False)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"WATCHPOST_INGEST__BATCH_MAX_MESSAGES": "0", "WATCHPOST_TYPO": "1", "WATCHPOST_LOG_LEVEL": "loud"})
    message = str(info.value)
    assert "WATCHPOST_TYPO (typo): unknown setting" in message
    assert "WATCHPOST_INGEST__BATCH_MAX_MESSAGES (ingest.batch_max_messages): must be at least 1" in message
    assert "WATCHPOST_LOG_LEVEL (log_level): must be DEBUG" in message
    assert len(info.value.problems) == 3


def test_the_configuration_reference_in_docs_is_current() -> None:
    from kernel.settings import reference

    path = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
    assert path.read_text() == reference(), "regenerate it: watchpost config reference > docs/configuration.md"


@pytest.mark.parametrize(("typo", "meant"), [
    ("WATCHPOST_API__PROT", "WATCHPOST_API__PORT"),
    ("WATCHPOST_DATABSE_URL", "WATCHPOST_DATABASE_URL"),
    ("WATCHPOST_INGEST__BATCH_MAX_MESSAGE", "WATCHPOST_INGEST__BATCH_MAX_MESSAGES"),
    ("WATCHPOST_HOEM", "WATCHPOST_HOME"),  # a variable of the scripts, not a setting: suggested all the same
])
def test_an_unknown_variable_is_answered_with_the_closest_known_one(typo: str, meant: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({typo: "1"})
    assert info.value.problems == [f"{typo} ({typo[len('WATCHPOST_'):].lower().replace('__', '.')}): unknown setting, did you mean {meant}?"]


def test_an_unknown_variable_like_no_other_gets_no_suggestion() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"WATCHPOST_ZZZQQQ": "1"})
    assert "did you mean" not in str(info.value)


@pytest.mark.parametrize(("variable", "value", "expected"), [
    ("WATCHPOST_API__PORT", "65536", "must be a TCP port, 1-65535"),
    ("WATCHPOST_API__PORT", "0", "must be at least 1"),
    ("WATCHPOST_METRICS_PORT", "70000", "must be a TCP port"),
    ("WATCHPOST_INGEST__BATCH_MAX_WAIT_S", "inf", "must be a finite number"),
    ("WATCHPOST_DISPATCH__REDISPATCH_AFTER_S", "nan", "must be a finite number"),
    ("WATCHPOST_NOTIFY__LEASE_S", "-1", "must be at least 5 s"),
])
def test_ports_and_durations_out_of_range_are_named_by_their_variable(variable: str, value: str, expected: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({variable: value})
    assert info.value.problems[0].startswith(f"{variable} (") and expected in info.value.problems[0]


def test_the_highest_port_and_port_zero_where_it_means_none_are_accepted() -> None:
    s = load_settings({"WATCHPOST_API__PORT": "65535", "WATCHPOST_METRICS_PORT": "0"})
    assert (s.api.port, s.metrics_port) == (65535, 0)
