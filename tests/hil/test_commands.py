"""Commands: STOP/START (all and one stream), SET_PERIOD taking effect within 2 batches, NACKs with
the right reasons, and REBOOT giving a new boot."""
from __future__ import annotations

import struct
import time

import pytest

from firmware import wire
from host.hil import checks

pytestmark = [pytest.mark.virtual_board]

WAIT_SLACK_S = 4.0         # a host busy elsewhere reads late: waits get this, judgements none
PERIOD_EFFECT_FRAMES = 2   # SET_PERIOD: at most this many frames after the ACK carry the old period
START_BATCHES = 2          # START: a stream's first frame arrives within this many batch periods


def batch_s(info) -> float:
    return info.period_us * info.batch / 1e6


def test_stop_then_start_all_streams(dut, traffic):
    traffic.collect(0.5)
    stop_at = traffic.mark()
    traffic.stop_streams()
    ack_at = next(i for i, f in enumerate(traffic.frames(since=stop_at)) if f.type == wire.T_ACK)
    slowest = max(batch_s(s) for s in traffic.streams.values())
    time.sleep(slowest + 0.2)
    after = traffic.frames(since=stop_at)[ack_at + 1:]
    assert [f for f in after if f.type == wire.T_DATA] == [], "DATA after the STOP's ACK"
    last_seq = {sid: fs[-1].seq for sid, fs in checks.data_by_stream(traffic.frames("DATA")).items()}

    start_at = traffic.mark()
    traffic.start_streams()
    ack = next(f for f in traffic.frames("ACK", since=start_at))
    for sid, info in traffic.streams.items():
        # judged in device time: the stream's next frame (seq last + 1; received, or skipped if a
        # busy host held the loop up past it, which frames_lost below checks was counted) ends
        # within START_BATCHES batch periods of the START's ACK; the host only waits for it
        f = traffic.expect("DATA", stream=sid, since=start_at, timeout=START_BATCHES * batch_s(info) + WAIT_SLACK_S)
        k = (f.seq - last_seq.get(sid, -1) - 1) & 0xFFFF
        assert k < 0x8000, f"{info.name}: seq {f.seq} after {last_seq.get(sid)}"
        end_us = f.t_us - k * f.count * f.period_us + f.count * f.period_us
        assert end_us - ack.t_us <= START_BATCHES * batch_s(info) * 1e6, f"{info.name}: first frame late"
        print(f"{info.name}: first frame ends {(end_us - ack.t_us) / 1e3:.1f} ms of device time after START")
    assert checks.frames_lost(traffic) == []


def test_stop_one_stream_leaves_the_others_running(dut, traffic):
    imu = traffic.stream_id("imu")
    since = traffic.mark()
    traffic.stop_streams(imu)
    frames = traffic.collect(1.3)
    ack = traffic.frames("ACK", since=since)[0]
    by = checks.data_by_stream(frames)
    assert all(f.t_us <= ack.t_us for f in by.get(imu, [])), "imu DATA built after its STOP"
    assert set(by) - {imu} == set(traffic.streams) - {imu}, "the other streams kept streaming"
    traffic.start_streams(imu)
    traffic.expect("DATA", stream=imu, timeout=START_BATCHES * batch_s(traffic.streams[imu]) + WAIT_SLACK_S)
    assert checks.frames_lost(traffic) == []


def test_set_period_takes_effect_within_two_batches(dut, traffic):
    imu = traffic.stream_id("imu")
    old = traffic.streams[imu].period_us
    new = old // 2
    since = traffic.mark()
    traffic.set_period(imu, new)
    t_ack = traffic.frames("ACK", since=since)[0].t_us
    frames = [f for f in traffic.collect(1.5, stream=imu)]
    later = [f for f in traffic.frames("DATA", stream=imu, since=since) if f.t_us >= t_ack - 1]
    periods = [f.period_us for f in later]
    assert new in periods, f"period never changed: {periods}"
    first_new = periods.index(new)
    assert first_new <= PERIOD_EFFECT_FRAMES - 1, f"old period in {first_new} frames after the ACK: {periods}"
    assert all(p == new for p in periods[first_new:]), periods
    fresh = [f for f in later if f.period_us == new]
    assert checks.schedule_breaks(fresh) == []
    # the new rate in device time: sample slots per second (a slot a busy host made the loop miss
    # is still a slot, marked missing or in a frame the device skipped and counted)
    r = checks.rate(traffic.streams[imu], [(0.0, f) for f in fresh])
    assert abs(r.slot_hz - 1e6 / new) / (1e6 / new) < 0.05, r
    assert frames
    assert checks.frames_lost(traffic) == []


@pytest.mark.parametrize("op, sid, args, reason", [
    (wire.OP_SET_PERIOD, 0, struct.pack("<I", 10), wire.R_BAD_ARGS),          # below the sensor minimum
    (wire.OP_SET_PERIOD, 0, b"\x01", wire.R_BAD_ARGS),                       # truncated argument
    (wire.OP_START, 99, b"", wire.R_BAD_STREAM),
    (0x55, 255, b"", wire.R_UNKNOWN_OPCODE),
], ids=["period_too_short", "period_truncated", "unknown_stream", "unknown_opcode"])
def test_bad_commands_are_nacked_with_a_reason_and_counted(dut, traffic, op, sid, args, reason):
    before = traffic.status().cmd_errors
    nack = traffic.send(op, sid, args, check=False)
    assert not nack.ok and nack.reason == reason, nack
    assert traffic.status().cmd_errors == (before + 1) & 0xFFFF
    assert traffic.ping().ok, "the board still takes commands"
    assert checks.frames_lost(traffic) == []


def test_reboot_gives_a_new_boot(dut, traffic):
    old = dut.boot_id
    boots = len(dut.virtual.boots) if dut.virtual is not None else None
    since = traffic.mark()
    hello = dut.reset(how="command")
    assert hello.boot_id != old
    info = hello.hello()
    assert info["reset_cause"] == dut.expected_reset_cause == dut.definition.reset_cause("machine_reset")
    assert hello.seq == 0
    ack = traffic.frames("ACK", boot_id=old, since=since)
    assert any(a.ack().opcode == wire.OP_REBOOT for a in ack), "REBOOT acknowledged before the reset"
    if boots is not None:
        assert len(dut.virtual.boots) == boots + 1 and dut.virtual.boots[-1].cause == wire.RC_HARD
    traffic.expect("DATA", stream=0, timeout=2)
