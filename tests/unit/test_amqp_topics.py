"""How ingest's AMQP source maps the MQTT topic scheme onto RabbitMQ's topic exchange."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.amqp_source import binding_key, ingest_bindings, topic_of
from ingest.mqtt_source import subscriptions
from kernel.settings import SettingsError, load_settings
from kernel.topics import Topics, parse_topic

# A topic level as the registry allows a device id, without the `.` the mapping cannot keep.
LEVEL = st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True)


def test_the_queue_is_bound_to_what_ingest_subscribes_to_over_mqtt() -> None:
    assert ingest_bindings("jiashan") == [
        "jiashan.water.#",
        "jiashan.elder.*.wearable",
        "jiashan.elder.*.home.*",
        "jiashan.elder.*.online",
        "jiashan.unit.*.gps",
        "jiashan.unit.*.status",
        "jiashan.unit.*.patient",
        "jiashan.unit.*.online",
    ]
    assert len(ingest_bindings("jiashan")) == len(subscriptions("jiashan", ""))


def test_alerts_and_platform_topics_are_not_bound() -> None:
    keys = ingest_bindings("jiashan")
    assert not [k for k in keys if k.endswith((".alert", ".receipt", ".order")) or k == "jiashan.elder.#"]


@given(station=LEVEL, person=LEVEL, sensor=LEVEL)
def test_a_routing_key_the_mqtt_plugin_made_turns_back_into_its_topic(station: str, person: str, sensor: str) -> None:
    t = Topics("jiashan")
    for topic in (t.water_telemetry(station), t.wearable(person), t.home(person, sensor), t.unit_gps(station)):
        routing_key = topic.replace("/", ".")  # what RabbitMQ's MQTT plugin does
        assert topic_of(routing_key) == topic


def test_a_dot_inside_a_topic_level_does_not_survive_and_the_topic_is_not_the_contracts() -> None:
    # The MQTT plugin keeps `WS.1` as it is; reading it back cannot tell it from two levels.
    topic = topic_of("jiashan/water/WS.1/telemetry".replace("/", "."))
    assert topic == "jiashan/water/WS/1/telemetry"
    assert parse_topic(topic, "jiashan") is None  # dead-lettered as an unknown topic


def test_the_amqp_source_is_chosen_by_settings_with_its_nodes_in_order() -> None:
    s = load_settings({"WATCHPOST_INGEST__SOURCE": "amqp",
                       "WATCHPOST_INGEST__AMQP_URLS": "amqp://a:1@n3:5672/, amqp://n1:5672 amqps://n2"})
    assert s.ingest.source == "amqp"
    assert s.ingest.amqp_nodes() == ["amqp://a:1@n3:5672/", "amqp://n1:5672", "amqps://n2"]
    assert load_settings({}).ingest.source == "mqtt"


@pytest.mark.parametrize(("env", "expected"), [
    ({"WATCHPOST_INGEST__SOURCE": "kafka"}, "WATCHPOST_INGEST__SOURCE (ingest.source): must be mqtt or amqp, got 'kafka'"),
    ({"WATCHPOST_INGEST__SOURCE": "amqp"}, "WATCHPOST_INGEST__AMQP_URLS (ingest.amqp_urls): ingest.source is amqp"),
    ({"WATCHPOST_INGEST__SOURCE": "amqp", "WATCHPOST_INGEST__AMQP_URLS": "mqtt://n1:1883"},
     "must be amqp:// or amqps:// URLs, got 'mqtt://n1:1883'"),
])
def test_a_misconfigured_amqp_source_is_named(env: dict[str, str], expected: str) -> None:
    with pytest.raises(SettingsError, match="^.*" + expected.replace("(", r"\(").replace(")", r"\)")):
        load_settings(env)


def test_binding_keys_translate_both_wildcards() -> None:
    assert binding_key("r/+/x/#") == "r.*.x.#"
