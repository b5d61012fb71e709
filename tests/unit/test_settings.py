from __future__ import annotations

import re
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


SECOND_COUNTY = {
    "WATCHPOST_REGION__NAME_ZH": "雷山", "WATCHPOST_REGION__NAME_EN": "Leishan", "WATCHPOST_REGION__ADCODE": "522634",
    "WATCHPOST_REGION__CAP_SENDER": "watchpost@leishan.example", "WATCHPOST_REGION__CENTRE_LAT": "26.38",
    "WATCHPOST_REGION__CENTRE_LON": "108.08",
}


def test_the_region_defaults_to_the_simulated_demo_county_and_derives_its_titles() -> None:
    region = load_settings({}).region
    assert (region.name_zh, region.adcode, region.zoom) == ("嘉善", "330421", 11)
    assert region.control_room("zh") == "嘉善应急指挥" and region.control_room("en") == "Jiashan Emergency Control Room"
    assert region.app_name("zh") == "嘉善守望" and region.app_name("en") == "Watchpost"


def test_another_county_is_configured_by_its_region_settings_and_titles_follow_its_name() -> None:
    region = load_settings({**SECOND_COUNTY, "WATCHPOST_REGION__CONTROL_ROOM_EN": "Leishan 120 Centre"}).region
    assert (region.name_en, region.adcode, region.centre_lat, region.centre_lon) == ("Leishan", "522634", 26.38, 108.08)
    assert region.app_name("zh") == "雷山守望" and region.control_room("zh") == "雷山应急指挥"
    assert region.control_room("en") == "Leishan 120 Centre"
    assert region.cap_sender_label() == "Leishan water-quality monitoring (Watchpost)"


def test_a_region_toml_section_is_read(tmp_path: Path) -> None:
    toml = tmp_path / "w.toml"
    toml.write_text("[region]\nname_zh = '雷山'\nname_en = 'Leishan'\nadcode = 522634\ncap_sender = 'wp@leishan.example'\n"
                    "centre_lat = 26\ncentre_lon = 108.1\nzoom = 10\n")
    region = load_settings({}, toml).region
    assert (region.adcode, region.centre_lat, region.zoom) == ("522634", 26.0, 10)


def test_another_county_keeping_some_of_the_demos_identity_is_refused_naming_what_to_set() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"WATCHPOST_REGION__NAME_ZH": "雷山", "WATCHPOST_REGION__NAME_EN": "Leishan"})
    message = str(info.value)
    assert "adcode, cap_sender, centre_lat, centre_lon still are the demo's" in message
    assert "WATCHPOST_REGION__CAP_SENDER" in message and "WATCHPOST_REGION__ADCODE" in message


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("ADCODE", "33042", "region.adcode): must be six digits"),
        ("CENTRE_LAT", "95", "region.centre_lat): must be between -90 and 90"),
        ("CENTRE_LON", "181", "region.centre_lon): must be between -180 and 180"),
        ("ZOOM", "25", "region.zoom): must be at most 18"),
        ("ZOOM", "0", "region.zoom): must be at least 1"),
        ("CAP_SENDER", "watch post@x", "region.cap_sender): must be non-empty, without spaces"),
        ("CAP_SENDER", "a,b", "region.cap_sender): must be non-empty"),
        ("NAME_EN", " ", "region.name_en): must not be empty"),
    ],
)
def test_malformed_region_settings_are_named(name: str, value: str, expected: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(f"WATCHPOST_REGION__{name} ({expected}")):
        load_settings({**SECOND_COUNTY, f"WATCHPOST_REGION__{name}": value})
