"""The fleet's wire contract and the ledger across the broker hop, with crafted messages (no broker)."""
from __future__ import annotations

import pytest

from host.fleet.hop import HopLedger
from host.fleet.topics import FleetError, Reject, board_id, check_envelope, parse_topic, parse_url, topic


def test_broker_urls():
    u = parse_url("mqtt://broker.lan/lab/bench")
    assert (u.host, u.port, u.prefix, u.tls) == ("broker.lan", 1883, "lab/bench", False)
    u = parse_url("mqtts://alice:s%40cret@broker.example:9000/lab")
    assert (u.port, u.tls, u.username, u.password) == (9000, True, "alice", "s@cret")
    assert parse_url("mqtts://h/p").port == 8883
    for bad in ("http://h/p", "mqtt://h", "mqtt://h/", "mqtt://h/a/#", "mqtt://h:99999/p"):
        with pytest.raises(FleetError):
            parse_url(bad)


def test_topic_layout_round_trips_and_rejects_the_rest():
    b = board_id("usb", "E661/86+4B#")
    assert "/" not in b and "+" not in b and "#" not in b
    assert parse_topic("lab", topic("lab", b, "data", "imu")) == parse_topic("lab", f"lab/{b}/data/imu")
    assert parse_topic("lab", topic("lab", b, "ledger")).kind == "ledger"
    for foreign in ("other/x/hello", "lab/x", "lab/x/weird", "lab/x/data", "lab/x/data/a/b", "lab//hello"):
        assert parse_topic("lab", foreign) is None


def _data(seq, ps, n=10, pub="p1", **kw):
    return {"pub": pub, "seq": seq, "ps": ps, "t": 1.0, "n": n, "values": {"v": [1.0] * n}, **kw}


def _ledger(seq, ps, pub="p1", host=None, final=False):
    host = host if host is not None else ps
    total = {"produced": host, "delivered": host, "unexplained": 0, "balanced": True}
    return {"pub": pub, "seq": seq, "ps": ps, "t": 1.0, "final": final,
            "ledger": {"verdict": "ok", "total": total},
            "hop": {"host_samples": host, "held": 0, "lost_before_broker": 0}}


@pytest.mark.parametrize("msg, why", [
    ([], "not a JSON object"), ({"seq": 1, "ps": 0, "t": 1}, "'pub'"), ({"pub": "p", "seq": -1, "ps": 0}, "'seq'"),
    ({"pub": "p", "seq": 1, "ps": 0, "t": 1, "n": 2, "values": {"v": [1]}}, "n=2"),
    ({"pub": "p", "seq": 1, "ps": 0, "t": 1, "n": 1, "values": {"v": ["x"]}}, "numbers"),
    ({"pub": "p", "seq": 1, "ps": 0, "t": "now"}, "'t'"),
])
def test_malformed_envelopes_are_rejected_with_a_reason(msg, why):
    with pytest.raises(Reject, match=why):
        check_envelope("data", msg)


def _feed(h, msgs, board="b"):
    for m in msgs:
        if m == "outage":
            h.outage()
        else:
            h.message(board, "ledger" if "ledger" in m else "data", check_envelope(
                "ledger" if "ledger" in m else "data", m), 1.0)
    return h.board_report(board)


def test_in_order_stream_balances():
    rep = _feed(HopLedger(), [_data(0, 0), _data(1, 10), _data(2, 20), _ledger(3, 30)])
    assert rep["verdict"] == "ok" and rep["hop"]["received"] == 30 and rep["hop"]["balanced"]


def test_a_gap_across_a_broker_outage_is_lost_broker_and_without_one_unexplained():
    rep = _feed(HopLedger(), [_data(0, 0), "outage", _data(3, 30), _ledger(4, 40)])
    assert rep["hop"]["lost_broker"] == 20 and rep["hop"]["unexplained"] == 0 and rep["verdict"] == "ok"
    rep = _feed(HopLedger(), [_data(0, 0), _data(3, 30), _ledger(4, 40)])
    assert rep["hop"]["unexplained"] == 20 and rep["verdict"] == "fail" and rep["hop"]["reasons"]
    assert rep["hop"]["balanced"]


def test_a_publishers_first_reconnect_is_outage_evidence():
    """The first `online` (connects=1) comes before the instance's first sequenced message, so the
    collector never held connects=1 for it: connects=2 alone has to count as the reconnect."""
    h = HopLedger()
    h.online_message("b", {"online": True, "pub": "p1", "connects": 1})  # no instance yet
    h.message("b", "data", _data(0, 0), 1.0)
    h.online_message("b", {"online": True, "pub": "p1", "connects": 2})
    rep = _feed(h, [_data(3, 30), _ledger(4, 40)])
    assert rep["hop"]["lost_broker"] == 20 and rep["hop"]["unexplained"] == 0 and rep["verdict"] == "ok"
    h = HopLedger()  # the same connects again (a retained replay) is no new evidence
    h.message("b", "data", _data(0, 0), 1.0)
    h.online_message("b", {"online": True, "pub": "p1", "connects": 2})
    rep = _feed(h, [_data(1, 10), _data(3, 30), _ledger(4, 40)])
    assert rep["hop"]["unexplained"] == 10 and rep["verdict"] == "fail"


def test_qos1_duplicates_are_counted_once_and_late_resends_fill_their_gap():
    h = HopLedger()
    assert h.message("b", "data", _data(0, 0), 1.0)
    assert not h.message("b", "data", _data(0, 0), 1.0)  # resent after a reconnect
    h.message("b", "data", _data(3, 30), 1.0)
    assert h.message("b", "data", _data(1, 10), 1.0)  # late, inside the gap
    rep = _feed(h, [_ledger(4, 40)])
    assert rep["duplicates"] == 1
    assert rep["hop"]["received"] == 30 and rep["hop"]["unexplained"] == 10  # seq 2 never came


def test_collector_joining_late_says_so_and_two_publishers_under_one_name_are_counted():
    rep = _feed(HopLedger(), [_data(5, 50), _ledger(6, 60)])
    assert rep["hop"]["before_collector"] == 50 and rep["verdict"] == "ok"
    h = HopLedger()
    _feed(h, [_data(0, 0, pub="a"), _data(0, 0, pub="b"), _data(1, 10, pub="a"), _data(1, 10, pub="b"),
              _ledger(2, 20, pub="a"), _ledger(2, 20, pub="b")])
    rep = h.board_report("b")
    assert rep["publishers"] == 2 and rep["conflicts"] == 1
    assert rep["hop"]["received"] == 40 and rep["hop"]["unexplained"] == 0  # no false gaps


def test_lost_before_broker_comes_from_the_publisher_and_balances():
    m = _ledger(2, 20, host=30)
    m["hop"]["lost_before_broker"] = 10
    rep = _feed(HopLedger(), [_data(0, 0), _data(1, 10), m])
    assert rep["hop"]["lost_before_broker"] == 10 and rep["hop"]["balanced"] and rep["verdict"] == "ok"
    m = _ledger(2, 20, host=35)  # 5 samples the publisher cannot account for
    rep = _feed(HopLedger(), [_data(0, 0), _data(1, 10), m])
    assert not rep["hop"]["balanced"] and rep["verdict"] == "fail"
