"""Sensor faults on the I2C bus (virtual board fault injection): a chip unplugged and re-plugged,
a NACK storm, a stuck bus. Each is reported, counted, bounded and recovered from, without a reset
and without disturbing the other streams' sequence."""
from __future__ import annotations

import errno
import time

import pytest

from firmware import wire
from host.hil import checks

pytestmark = [pytest.mark.virtual_board, pytest.mark.fault_injection]

FAILS_TO_OFFLINE = 5       # consecutive failed reads before SENSOR_OFFLINE (firmware/sampler.py)
RECOVERY_S = 5.0 + 1.0     # re-probe backoff tops out at 5 s (firmware/health.py) + slack
STUCK_S = 1.5


def offline_within(info) -> float:
    return FAILS_TO_OFFLINE * info.period_us / 1e6 + 1.0


def no_reset(dut, traffic, boots_before):
    assert len(dut.virtual.boots) == boots_before, "the board reset"
    assert {f.boot_id for f in traffic.frames()} == {dut.boot_id}, "frames from another boot"


def assert_streams_continuous(traffic):
    for sid, fs in checks.data_by_stream(traffic.frames("DATA")).items():
        assert checks.seq_gaps(fs) == [], f"{traffic.streams[sid].name}: sequence gaps"
    assert traffic.stats.missing == 0 and traffic.corrupt_segments == 0


def assert_streams_accounted(traffic):
    """A loop held up past a whole frame of a stream (each stuck transfer waits the bus timeout)
    skips that frame as a device drop: every host gap is one the device counted."""
    assert traffic.corrupt_segments == 0
    led = traffic.ledger()
    tot = led.total
    assert led.verdict != "fail" and not tot.not_reported, tot.line()
    assert tot.lost_link == tot.lost_port_gone == tot.lost_recording == 0, tot.line()


def values_ok_after(traffic, sid, since, frames=2):
    info = traffic.streams[sid]
    got = []
    for _ in range(frames):
        f = traffic.expect("DATA", stream=sid, since=since, timeout=info.period_us * info.batch / 1e6 + 1,
                          where=lambda f: f.data().missing_count() == 0)
        got.append(f)
        since = traffic.mark()
    for f in got:
        assert checks.out_of_range(info, traffic.physical(f)) == []


def test_sensor_unplugged_then_replugged(dut, traffic, virtual_board):
    boots = len(virtual_board.boots)
    env = traffic.stream_id("bme280")
    info = traffic.streams[env]
    traffic.collect(0.3)
    since = traffic.mark()
    dut.note("fault: unplug bme280")
    virtual_board.unplug("bme280")
    off = traffic.expect(event="SENSOR_OFFLINE", since=since, timeout=offline_within(info)).event()
    assert off.stream == env and off.arg in (errno.EIO, errno.ENODEV)  # a NACKed address: rp2 EIO, esp32 ENODEV
    st = traffic.status()
    assert not st.streams[env].online and st.streams[env].sensor_errors >= FAILS_TO_OFFLINE
    assert all(x.online for x in st.streams if x.stream != env)

    since = traffic.mark()
    dut.note("fault: replug bme280")
    virtual_board.replug("bme280")
    on = traffic.expect(event="SENSOR_ONLINE", since=since, timeout=RECOVERY_S).event()
    assert on.stream == env
    traffic.expect("CALIB", stream=env, since=since, timeout=1.0)  # calibration re-sent after recovery
    values_ok_after(traffic, env, traffic.mark())
    assert traffic.status().streams[env].online

    no_reset(dut, traffic, boots)
    assert_streams_continuous(traffic)
    others = [f for f in traffic.frames("DATA") if f.stream != env]
    assert sum(f.data().missing_count() for f in others) <= 0.01 * sum(f.count for f in others)


def test_nack_storm_is_counted_bounded_and_recovered(dut, traffic, virtual_board):
    boots = len(virtual_board.boots)
    imu = traffic.stream_id("mpu6050")
    info = traffic.streams[imu]
    st0 = traffic.status()
    dut.note("fault: 30 % NACK on mpu6050 for 2 s")
    virtual_board.set_nack_rate("mpu6050", 0.3)
    time.sleep(2.0)
    virtual_board.set_nack_rate("mpu6050", 0.0)
    st1 = traffic.status()
    errs = st1.streams[imu].sensor_errors - st0.streams[imu].sensor_errors
    miss = st1.streams[imu].samples_missing - st0.streams[imu].samples_missing
    samples = (st1.uptime_ms - st0.uptime_ms) * 1000 / info.period_us
    print(f"NACK storm: {errs} sensor errors, {miss} samples missing of ~{samples:.0f}")
    assert errs > 0.1 * samples, "the errors were counted"
    # bounded: every failed read costs exactly its own sample; an offline spell (5 NACKs in a row)
    # costs at most its re-probe backoff
    assert errs <= miss <= samples * 0.6, "missing samples stay bounded"
    # recovered: online (re-probe backoff) and clean samples again
    if not st1.streams[imu].online:
        traffic.expect(event="SENSOR_ONLINE", timeout=RECOVERY_S, where=lambda f: f.event().stream == imu)
    values_ok_after(traffic, imu, traffic.mark())
    st2 = traffic.status()
    time.sleep(0.5)
    st3 = traffic.status()
    # (sensor errors, not missing samples: a virtual board may still miss a slot to CPU load)
    assert st3.streams[imu].online and st3.streams[imu].sensor_errors == st2.streams[imu].sensor_errors
    no_reset(dut, traffic, boots)
    assert_streams_continuous(traffic)


def test_stuck_bus_is_counted_bounded_and_recovered(dut, traffic, virtual_board):
    boots = len(virtual_board.boots)
    i2c = [sid for sid, s in traffic.streams.items() if s.kind != "analog"]
    a0 = traffic.stream_id("analog")
    st0 = traffic.status()
    since = traffic.mark()
    dut.note(f"fault: I2C bus stuck for {STUCK_S} s")
    t0 = time.monotonic()
    virtual_board.set_bus_stuck(True)
    time.sleep(STUCK_S)
    virtual_board.set_bus_stuck(False)
    stuck_s = time.monotonic() - t0
    offline = {f.event().stream for f in traffic.frames("EVENT", since=since)
               if f.event().code == wire.EV_SENSOR_OFFLINE}
    assert offline == set(i2c), f"every I2C sensor went offline ({offline})"
    for f in traffic.frames("EVENT", since=since):
        if f.event().code == wire.EV_SENSOR_OFFLINE:
            assert f.event().arg == errno.ETIMEDOUT
    back = set()
    deadline = time.monotonic() + RECOVERY_S
    while back != set(i2c) and time.monotonic() < deadline:
        f = traffic.expect(event="SENSOR_ONLINE", timeout=max(0.1, deadline - time.monotonic()))
        back.add(f.event().stream)
    assert back == set(i2c), "every I2C sensor came back"
    for sid in i2c:
        values_ok_after(traffic, sid, traffic.mark(), frames=1)
    st1 = traffic.status()
    window_us = (st1.uptime_ms - st0.uptime_ms) * 1000
    for x, y in zip(st1.streams, st0.streams):
        info = traffic.streams[x.stream]
        miss = x.samples_missing - y.samples_missing
        assert miss <= window_us / info.period_us + info.batch, f"{info.name}: {miss} missing"
        if x.stream in i2c:
            assert x.sensor_errors - y.sensor_errors >= FAILS_TO_OFFLINE and x.online
    print(f"stuck {stuck_s:.1f} s: overruns {st1.loop_overruns - st0.loop_overruns}, missing "
          + ", ".join(f"{traffic.streams[x.stream].name}={x.samples_missing - y.samples_missing}"
                      for x, y in zip(st1.streams, st0.streams)))
    no_reset(dut, traffic, boots)
    assert_streams_accounted(traffic)
    assert traffic.frames("DATA", stream=a0, since=since), "the ADC stream kept streaming"
