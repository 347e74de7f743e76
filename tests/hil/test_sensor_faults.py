"""Sensor faults on the I2C bus (fault injection on the virtual board or the emulated RP2040): a
chip unplugged and re-plugged, a NACK storm, a stuck bus. Each is reported, counted, bounded and
recovered from, without a reset and without disturbing the other streams' sequence. A fault lasts
its spell in the board's own time (`traffic.wait`), which on the emulator is emulated time."""
from __future__ import annotations

import errno

import pytest

from firmware import wire
from host.hil import checks

pytestmark = [pytest.mark.virtual_board, pytest.mark.fault_injection]

FAILS_TO_OFFLINE = 5       # consecutive failed reads before SENSOR_OFFLINE (firmware/sampler.py)
RECOVERY_S = 5.0 + 1.0     # re-probe backoff tops out at 5 s (firmware/health.py) + slack
STUCK_MARGIN_S = 0.5


# How long the host waits for an event: FAILS_TO_OFFLINE reads (or the re-probe backoff) plus
# WAIT_SLACK_S for a host busy elsewhere.  A wait, not a judgement: "offline after exactly 5
# failed reads" is judged from the device's own error counter.
WAIT_SLACK_S = 4.0


def offline_within(info) -> float:
    return FAILS_TO_OFFLINE * info.period_us / 1e6 + WAIT_SLACK_S


def no_reset(dut, traffic, board, boots_before):
    assert len(board.boots) == boots_before, "the board reset"
    assert {f.boot_id for f in traffic.frames()} == {dut.boot_id}, "frames from another boot"


def assert_streams_continuous(traffic):
    """No frame lost on any stream (a gap may only be a frame the device skipped and counted,
    when a busy host held its loop up past a whole frame's slots); nothing corrupted."""
    assert traffic.corrupt_segments == 0
    assert checks.frames_lost(traffic) == []


def assert_streams_accounted(traffic):
    """A loop held up past a whole frame of a stream (each stuck transfer waits the bus timeout)
    skips that frame (counted in frames_skipped): every host gap is one the device counted."""
    assert traffic.corrupt_segments == 0
    assert checks.frames_lost(traffic) == []


def stuck_spell_s(dut, n_i2c: int) -> float:
    """A stuck-bus spell long enough for every I2C sensor to fail FAILS_TO_OFFLINE reads: a
    transfer into a stuck bus costs up to two bus timeouts (rp2: the SDK's own timeout, then the
    port's wait for SCL; measured 100 ms at 50 ms on the emulated RP2040), plus the loop's own
    work. 2.0 s at the boards' 50 ms."""
    timeout_s = max(b.timeout_us for b in dut.definition.i2c) / 1e6
    return FAILS_TO_OFFLINE * n_i2c * 2 * timeout_s + STUCK_MARGIN_S


def values_ok_after(traffic, sid, since, frames=2):
    info = traffic.streams[sid]
    got = []
    for _ in range(frames):
        # clean of the fault: no sample marked missing for a sensor cause (a late slot, cause
        # OVERRUN, is a busy host's; out_of_range skips missing samples)
        f = traffic.expect("DATA", stream=sid, since=since,
                           timeout=info.period_us * info.batch / 1e6 + WAIT_SLACK_S,
                           where=lambda f: not f.flags & wire.FLAG_MISS_SENSOR)
        got.append(f)
        since = traffic.mark()
    for f in got:
        assert checks.out_of_range(info, traffic.physical(f)) == []


def test_sensor_unplugged_then_replugged(dut, traffic, virtual_board):
    boots = len(virtual_board.boots)
    env = traffic.stream_id("bme280")
    info = traffic.streams[env]
    traffic.collect(0.3)
    errors_before = traffic.status().streams[env].sensor_errors
    since = traffic.mark()
    dut.note("fault: unplug bme280")
    virtual_board.unplug("bme280")
    off = traffic.expect(event="SENSOR_OFFLINE", since=since, timeout=offline_within(info)).event()
    assert off.stream == env and off.arg in (errno.EIO, errno.ENODEV)  # a NACKed address: rp2 EIO, esp32 ENODEV
    st = traffic.status()
    # offline after exactly FAILS_TO_OFFLINE failed reads, and no read tried while offline
    assert not st.streams[env].online and st.streams[env].sensor_errors - errors_before == FAILS_TO_OFFLINE
    assert all(x.online for x in st.streams if x.stream != env)

    since = traffic.mark()
    dut.note("fault: replug bme280")
    virtual_board.replug("bme280")
    on = traffic.expect(event="SENSOR_ONLINE", since=since, timeout=RECOVERY_S + WAIT_SLACK_S).event()
    assert on.stream == env
    traffic.expect("CALIB", stream=env, since=since, timeout=1.0)  # calibration re-sent after recovery
    values_ok_after(traffic, env, traffic.mark())
    assert traffic.status().streams[env].online

    no_reset(dut, traffic, virtual_board, boots)
    # the other streams' sensors were never in question: no sample of theirs is marked missing
    # for a sensor cause (a late one, cause OVERRUN, is the host's CPU, not the fault)
    by = checks.data_by_stream(traffic.frames("DATA"))
    for x in traffic.status().streams:
        if x.stream != env:
            kind = traffic.streams[x.stream].kind
            assert checks.sensor_trouble(kind, by.get(x.stream, []), x) == [], traffic.streams[x.stream].name
    assert_streams_continuous(traffic)


def test_nack_storm_is_counted_bounded_and_recovered(dut, traffic, virtual_board):
    boots = len(virtual_board.boots)
    imu = traffic.stream_id("mpu6050")
    info = traffic.streams[imu]
    st0 = traffic.status()
    dut.note("fault: 30 % NACK on mpu6050 for 2 s")
    virtual_board.set_nack_rate("mpu6050", 0.3)
    traffic.wait(2.0)
    virtual_board.set_nack_rate("mpu6050", 0.0)
    st1 = traffic.status()
    x, y = st1.streams[imu], st0.streams[imu]
    errs = x.sensor_errors - y.sensor_errors
    marks = x.missing_sensor - y.missing_sensor
    produced = (x.frames_built + x.frames_skipped - y.frames_built - y.frames_skipped) * info.batch
    late = x.missing_overrun - y.missing_overrun + (x.frames_skipped - y.frames_skipped) * info.batch
    offline = max(0, marks - errs)  # slots marked while offline, no read made
    reads = produced - late - offline
    print(f"NACK storm: {errs} sensor errors in {reads} reads, {marks} marked missing (sensor), {late} late, "
          f"of {produced} samples")
    # counted: with 30 % of transactions NACKed (two per read), far more than 10 % of reads fail
    assert errs > 0.1 * reads, "the errors were counted"
    # bounded: every failed read costs exactly its own sample (its mark is counted when its frame
    # is built, so the batch in progress at st1 may hold up to batch - 1 errors not yet marked);
    # an offline spell (5 NACKs in a row) costs at most its re-probe backoff
    assert errs - (info.batch - 1) <= marks <= produced * 0.6, "missing samples stay bounded"
    # recovered: online (re-probe backoff) and clean samples again
    if not st1.streams[imu].online:
        traffic.expect(event="SENSOR_ONLINE", timeout=RECOVERY_S + WAIT_SLACK_S,
                       where=lambda f: f.event().stream == imu)
    values_ok_after(traffic, imu, traffic.mark())
    st2 = traffic.status()
    traffic.wait(0.5)
    st3 = traffic.status()
    # (sensor errors, not missing samples: a virtual board may still miss a slot to CPU load)
    assert st3.streams[imu].online and st3.streams[imu].sensor_errors == st2.streams[imu].sensor_errors
    no_reset(dut, traffic, virtual_board, boots)
    assert_streams_continuous(traffic)


def test_stuck_bus_is_counted_bounded_and_recovered(dut, traffic, virtual_board):
    boots = len(virtual_board.boots)
    i2c = [sid for sid, s in traffic.streams.items() if s.kind != "analog"]
    a0 = traffic.stream_id("analog")
    st0 = traffic.status()
    since = traffic.mark()
    spell_s = stuck_spell_s(dut, len(i2c))
    dut.note(f"fault: I2C bus stuck for {spell_s:g} s")
    t0 = traffic.clock()
    virtual_board.set_bus_stuck(True)
    traffic.wait(spell_s)
    virtual_board.set_bus_stuck(False)
    stuck_s = traffic.clock() - t0
    offline = {f.event().stream for f in traffic.frames("EVENT", since=since)
               if f.event().code == wire.EV_SENSOR_OFFLINE}
    assert offline == set(i2c), f"every I2C sensor went offline ({offline})"
    for f in traffic.frames("EVENT", since=since):
        if f.event().code == wire.EV_SENSOR_OFFLINE:
            assert f.event().arg == errno.ETIMEDOUT
    back = set()
    deadline = traffic.clock() + RECOVERY_S + WAIT_SLACK_S
    while back != set(i2c) and traffic.clock() < deadline:
        f = traffic.expect(event="SENSOR_ONLINE", timeout=max(0.1, deadline - traffic.clock()))
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
    no_reset(dut, traffic, virtual_board, boots)
    assert_streams_accounted(traffic)
    assert traffic.frames("DATA", stream=a0, since=since), "the ADC stream kept streaming"
