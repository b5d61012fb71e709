import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from kernel.topics import ANY, Channel, Kind, TopicAddress, Topics, parse_topic, share_group_offered, shared

T = Topics("jiashan")

# Every topic of the contract, as the contract spells it.
CONTRACT = [
    (T.water_telemetry("WS-001"), "jiashan/water/WS-001/telemetry", TopicAddress(Kind.WATER, "WS-001", Channel.TELEMETRY)),
    (T.wearable("P-1"), "jiashan/elder/P-1/wearable", TopicAddress(Kind.ELDER, "P-1", Channel.WEARABLE)),
    (T.home("P-1", "smoke-1"), "jiashan/elder/P-1/home/smoke-1", TopicAddress(Kind.ELDER, "P-1", Channel.HOME, "smoke-1")),
    (T.alert("P-1"), "jiashan/elder/P-1/alert", TopicAddress(Kind.ELDER, "P-1", Channel.ALERT)),
    (T.unit_gps("AMB-1"), "jiashan/unit/AMB-1/gps", TopicAddress(Kind.UNIT, "AMB-1", Channel.GPS)),
    (T.unit_status("AMB-1"), "jiashan/unit/AMB-1/status", TopicAddress(Kind.UNIT, "AMB-1", Channel.STATUS)),
    (T.online(Kind.WATER, "WS-001"), "jiashan/water/WS-001/online", TopicAddress(Kind.WATER, "WS-001", Channel.ONLINE)),
    (T.online("elder", "P-1"), "jiashan/elder/P-1/online", TopicAddress(Kind.ELDER, "P-1", Channel.ONLINE)),
    (T.online(Kind.UNIT, "AMB-1"), "jiashan/unit/AMB-1/online", TopicAddress(Kind.UNIT, "AMB-1", Channel.ONLINE)),
    (T.water_ack("JX-1"), "jiashan/partner/JX-1/water-ack", TopicAddress(Kind.PARTNER, "JX-1", Channel.WATER_ACK)),
    (T.order("AMB-1"), "jiashan/unit/AMB-1/order", TopicAddress(Kind.UNIT, "AMB-1", Channel.ORDER)),
    (T.receipt("P-1"), "jiashan/elder/P-1/receipt", TopicAddress(Kind.ELDER, "P-1", Channel.RECEIPT)),
    (T.water_alert("JX-1"), "jiashan/partner/JX-1/water-alert", TopicAddress(Kind.PARTNER, "JX-1", Channel.WATER_ALERT)),
]


@pytest.mark.parametrize(("built", "spelled", "address"), CONTRACT)
def test_every_contract_topic_is_built_as_the_contract_spells_it_and_parses_back(built, spelled, address):
    assert built == spelled
    assert parse_topic(spelled, "jiashan") == address
    assert T.of(address) == spelled


def test_only_orders_receipts_and_partner_alerts_come_from_the_platform():
    from_platform = {a.channel for _, _, a in CONTRACT if a.from_platform}
    assert from_platform == {Channel.ORDER, Channel.RECEIPT, Channel.WATER_ALERT}


@pytest.mark.parametrize(
    "topic",
    [
        "other/water/WS-001/telemetry",  # another root
        "jiashan",
        "jiashan/water/WS-001",
        "jiashan/water//telemetry",  # empty id
        "jiashan/boats/B-1/telemetry",  # unknown kind
        "jiashan/water/WS-001/readings",  # unknown channel
        "jiashan/water/WS-001/order",  # a channel water stations do not have
        "jiashan/partner/JX-1/online",
        "jiashan/elder/P-1/home",  # a home sensor without its id
        "jiashan/elder/P-1/home/",
        "jiashan/elder/P-1/wearable/extra",
        "jiashan/unit/AMB-1/gps/extra",
        "jiashan/elder/P-1/home/smoke-1/extra",
    ],
)
def test_topics_outside_the_contract_have_no_address(topic):
    assert parse_topic(topic, "jiashan") is None


def test_the_root_must_be_a_whole_level():
    assert parse_topic("jiashanx/water/WS-001/telemetry", "jiashan") is None


def test_ingest_subscribes_to_device_topics_and_not_to_orders_receipts_or_alerts():
    assert T.ingest_filters() == [
        "jiashan/water/#",
        "jiashan/elder/+/wearable",
        "jiashan/elder/+/home/+",
        "jiashan/elder/+/online",
        "jiashan/unit/+/gps",
        "jiashan/unit/+/status",
        "jiashan/unit/+/patient",
        "jiashan/unit/+/online",
    ]


def test_wildcards_and_acl_usernames_take_the_place_of_an_id():
    assert T.order(ANY) == "jiashan/unit/+/order"
    assert T.home("%u", ANY) == "jiashan/elder/%u/home/+"
    assert T.everything() == "jiashan/#"


def test_a_shared_subscription_names_its_group_and_no_group_means_an_ordinary_one():
    assert shared("jiashan/unit/+/gps", "dispatch") == "$share/dispatch/jiashan/unit/+/gps"
    assert shared("jiashan/unit/+/gps", "") == "jiashan/unit/+/gps"


def test_a_broker_without_shared_subscriptions_is_subscribed_to_plainly():
    said_no = Properties(PacketTypes.CONNACK)
    said_no.SharedSubscriptionAvailable = 0  # RabbitMQ's MQTT plugin
    said_yes = Properties(PacketTypes.CONNACK)
    said_yes.SharedSubscriptionAvailable = 1
    assert share_group_offered("watchpost-alerts", said_no) == ""
    assert share_group_offered("watchpost-alerts", said_yes) == "watchpost-alerts"
    assert share_group_offered("watchpost-alerts", Properties(PacketTypes.CONNACK)) == "watchpost-alerts"  # not said
    assert share_group_offered("watchpost-alerts", None) == "watchpost-alerts"  # MQTT 3.1.1
    assert share_group_offered("", said_no) == ""


_level = st.text(st.characters(blacklist_characters="/+#\x00", blacklist_categories=("Cs",)), min_size=1, max_size=20)


@given(ident=_level, sensor=_level, root=_level)
def test_any_ids_round_trip_through_build_and_parse(ident, sensor, root):
    topics = Topics(root)
    for topic in (topics.wearable(ident), topics.home(ident, sensor), topics.order(ident), topics.water_ack(ident)):
        address = parse_topic(topic, root)
        assert address is not None
        assert topics.of(address) == topic


@given(topic=st.text(max_size=60))
def test_parsing_any_text_gives_an_address_or_none(topic):
    address = parse_topic(topic, "jiashan")
    assert address is None or T.of(address) == topic
