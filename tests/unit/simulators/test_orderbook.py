"""The simulator ties the platform's orders to the emergencies it scripted by place and time."""

from __future__ import annotations

from simulators.orderbook import OrderBook


def test_an_sos_sent_from_the_market_is_matched_where_its_fix_put_the_incident() -> None:
    book = OrderBook()
    book.expect("sos", "P-0001", 30.84, 120.92, 100.0, 400.0, shows_at_once=True)  # scripted at home
    book.located("P-0001", 30.86, 120.94, 101.0)  # the watch's alert carried a fix 2.8 km away
    assert book.received("AMB-01", "INC-1", 30.86, 120.94, 300.0, 130.0).trigger_kind == "sos"
    assert book.received("AMB-02", "INC-2", 30.84, 120.92, 300.0, 130.0).trigger_kind is None


def test_a_fix_outside_the_emergencys_window_moves_nothing() -> None:
    book = OrderBook()
    book.expect("sos", "P-0001", 30.84, 120.92, 100.0, 400.0, shows_at_once=True)
    book.located("P-0001", 30.86, 120.94, 500.0)
    assert book.received("AMB-01", "INC-1", 30.84, 120.92, 300.0, 130.0).trigger_kind == "sos"
