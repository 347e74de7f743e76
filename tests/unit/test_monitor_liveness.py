"""The monitor notices a silent board: STALLED after several expected periods (from the HELLO),
cleared when frames resume, and commands left without ACK; judged with an injected clock on
synthetic streams, through the Liveness judge, the live feed, the device panel and piped output."""
from __future__ import annotations

import io
import time

from fake_links import PushLink
from firmware import wire
from host.monitoring.feeds import LiveFeed
from host.monitoring.liveness import Liveness
from host.monitoring.panels import device_text
from host.monitoring.session import Session
from host.protocol.encoder import encode_ack, encode_hello
from host.protocol.frames import StreamInfo
from host.testkit import synthetic

T0 = 1_700_000_000.0


def _info(period_us: int, batch: int) -> StreamInfo:
    return StreamInfo(0, "s", "analog", period_us, batch, ">H", 2, [], {}, {})


def _judge(**kw):
    log: list[tuple[float, str]] = []
    return Liveness(lambda t, text: log.append((t, text)), **kw), log


def test_stall_threshold_is_the_longest_batch_period_times_the_factor_with_a_floor():
    lv, _ = _judge(factor=3.0, floor_s=2.0)
    assert lv.threshold_s == 2.0  # no HELLO yet: the floor
    lv.streams([_info(1000, 10), _info(500_000, 4)])  # 10 ms and 2 s batches
    assert lv.threshold_s == 6.0
    lv.streams([_info(1000, 10)])
    assert lv.threshold_s == 2.0


def test_stall_is_raised_once_cleared_by_a_frame_and_logged_both_ways():
    lv, log = _judge(factor=3.0, floor_s=1.0)
    lv.started(T0)
    lv.streams([_info(100_000, 5)])  # 0.5 s batches -> 1.5 s
    lv.frame(T0 + 0.4)
    lv.check(T0 + 1.8)
    assert not lv.stalled and lv.state(T0 + 1.8) == "ok"
    lv.check(T0 + 1.96)
    assert lv.stalled and lv.state(T0 + 3.4) == "STALLED for 3.0 s"
    lv.check(T0 + 5.0)
    assert [text for _, text in log] == ["STALLED: no frame for 1.6 s (expected one at least every 1.5 s)"]
    lv.frame(T0 + 6.4)
    assert not lv.stalled and lv.stalls == 1
    assert log[-1] == (T0 + 6.4, "frames again after 6.0 s of silence")


def test_silence_asked_for_or_from_a_lost_port_is_not_a_stall():
    lv, log = _judge(floor_s=1.0)
    lv.started(T0)
    lv.sent(7, wire.OP_STOP, T0)
    lv.answered(7, True, T0 + 0.1)
    lv.check(T0 + 10)
    assert lv.state(T0 + 10) == "stopped" and not lv.stalled
    lv.sent(8, wire.OP_START, T0 + 10)
    lv.answered(8, True, T0 + 10.1)
    lv.link(False, T0 + 10.5)
    lv.check(T0 + 20)
    assert lv.state(T0 + 20) == "port gone" and not lv.stalled
    lv.link(True, T0 + 20)
    lv.check(T0 + 20.5)
    assert not lv.stalled
    lv.check(T0 + 21.0)
    assert lv.stalled and log == [(T0 + 21.0, "STALLED: no frame for 1.0 s (expected one at least every 1.0 s)")]


def test_a_command_without_answer_is_reported_once_and_a_late_answer_too():
    lv, log = _judge(ack_timeout_s=2.0)
    lv.sent(3, wire.OP_SEND_HELLO, T0)
    lv.sent(4, wire.OP_PING, T0 + 0.5)
    lv.answered(4, False, T0 + 0.6)  # a NACK is an answer
    lv.check(T0 + 1.9)
    assert lv.unanswered == []
    lv.check(T0 + 2.0)
    lv.check(T0 + 9.0)
    assert [c.name for c in lv.unanswered] == ["SEND_HELLO #3"] and lv.unanswered_total == 1
    assert [text for _, text in log] == ["SEND_HELLO #3 got no answer after 2 s"]
    lv.answered(3, True, T0 + 9.5)
    assert lv.unanswered == [] and log[-1] == (T0 + 9.5, "SEND_HELLO #3 answered late, after 9.5 s")


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


def _poll_until(feed: LiveFeed, done, what: str) -> None:
    end = time.monotonic() + 5
    while not done():
        assert time.monotonic() < end, f"never saw {what}: {[ln.text for ln in feed.session.log]}"
        feed.poll(0.02)


def _logged(session: Session) -> list[str]:
    return [ln.text for ln in session.log]


def test_live_feed_reports_a_stalled_board_and_an_unanswered_hello_then_the_recovery():
    link, clock, session = PushLink(), Clock(), Session()
    feed = LiveFeed(link, session, clock=clock)
    feed.start_reader()  # sends SEND_HELLO #1, which this board never answers
    try:
        info = synthetic.hello_info(analog_period_us=200_000, analog_batch=5)  # 1 s batches -> 3 s
        link.chunks.put(encode_hello(synthetic.BOOT_ID, 0, info) + b"".join(synthetic.imu_batches(3)))
        _poll_until(feed, lambda: session.stats.frames_ok >= 4, "the frames")
        assert feed.liveness.threshold_s == 3.0 and feed.liveness.state(clock.t) == "ok"
        clock.t = T0 + 2.5
        feed.poll()
        assert "SEND_HELLO #1 got no answer after 2 s" in _logged(session)
        assert not feed.liveness.stalled
        clock.t = T0 + 3.0
        feed.poll()
        assert feed.liveness.stalled and "STALLED: no frame for 3.0 s" in _logged(session)[-1]
        panel = device_text(session, feed.liveness, T0 + 4.0).plain
        assert "board STALLED for 4.0 s" in panel and "no answer to SEND_HELLO #1" in panel
        clock.t = T0 + 7.0
        token = feed.request_hello()
        link.chunks.put(encode_ack(synthetic.BOOT_ID, 0, wire.OP_SEND_HELLO, token)
                        + synthetic.imu_batches(1, seq0=3)[0])
        _poll_until(feed, lambda: not feed.liveness.stalled, "frames again")
        assert "frames again after 7.0 s of silence" in _logged(session)
        clock.t = T0 + 9.5
        feed.poll()
        assert [c.name for c in feed.liveness.unanswered] == ["SEND_HELLO #1"]  # #2 was answered
    finally:
        feed.close()


def test_piped_output_carries_the_stall_and_the_unanswered_command():
    from host.monitor import _headless

    link, clock, session = PushLink(), Clock(), Session()
    feed = LiveFeed(link, session, clock=clock)
    feed.start_reader()
    try:
        link.chunks.put(synthetic.boot_stream(n_imu=2))
        _poll_until(feed, lambda: session.stats.frames_ok >= 3, "the frames")
        clock.t = T0 + 5.0
        out = io.StringIO()
        assert _headless(feed, "text", duration=0.2, frames=None, out=out) == 0
    finally:
        feed.close()
    text = out.getvalue()
    assert "[host] STALLED: no frame for 5.0 s (expected one at least every 2.0 s)" in text
    assert "[host] SEND_HELLO #1 got no answer after 2 s" in text
