"""main.py under faults on the virtual board: sensor unplug/replug, backpressure drops that the
host reconciles exactly, commands (ACK, NACK, garbage), config fallback."""
from __future__ import annotations

import json
import time

import pytest

from firmware import wire
from host.monitoring.ledger import Ledger
from host.protocol.encoder import encode_command
from host.testkit.fwboard import FIRMWARE, boot

pytestmark = [pytest.mark.virtual_board, pytest.mark.fault_injection]


def sensor_clean(f) -> bool:
    """No sample of this DATA frame is marked missing for a sensor cause."""
    return not f.flags & wire.FLAG_MISS_SENSOR


def default_config(**kw) -> dict:
    cfg = json.loads((FIRMWARE / "config.json").read_text())
    cfg.update(kw)
    return cfg


def test_firmware_sensor_unplug_goes_offline_and_replug_comes_back(vboard_factory):
    board = vboard_factory(link_rate="usb")
    r = boot(board, default_config(status_period_ms=200))
    try:
        r.wait(lambda: r.of(wire.T_STATUS), what="first STATUS")
        board.unplug("mpu6050")
        r.wait(lambda: any(e.code == wire.EV_SENSOR_OFFLINE and e.stream == 0 for e in r.events()),
               what="SENSOR_OFFLINE")
        time.sleep(0.5)
        board.replug("mpu6050")
        r.wait(lambda: any(e.code == wire.EV_SENSOR_ONLINE and e.stream == 0 for e in r.events()),
               timeout=8, what="SENSOR_ONLINE")
        # recovery, judged in arrival order rather than by a sleep: an IMU frame after ONLINE with
        # no sample missing for a sensor cause (a late slot, cause OVERRUN, is a busy host's)
        r.wait(lambda: any(sensor_clean(f) for f in imu_after_online(r)),
               what="a sensor-clean IMU frame after SENSOR_ONLINE")
        n_calib = len([f for f in r.of(wire.T_CALIB) if f.stream == 0])
        r.wait(lambda: len(r.of(wire.T_STATUS)) >= 2 and r.of(wire.T_STATUS)[-1].status().streams[0].online,
               what="STATUS with the IMU online")
        st_online = r.of(wire.T_STATUS)[-1].status()
        time.sleep(0.3)  # a few more frames and a STATUS: the sensor must not relapse
        r.wait(lambda: r.of(wire.T_STATUS)[-1].status().uptime_ms > st_online.uptime_ms, what="a later STATUS")
    finally:
        r.close()
    assert n_calib == 2  # boot + after it came back
    offline = [e for e in r.events() if e.code == wire.EV_SENSOR_OFFLINE][0]
    assert offline.arg == 5  # the rp2 port's EIO: the address was not acknowledged
    imu = [f for f in r.of(wire.T_DATA) if f.stream == 0]
    missing = sum(f.data().missing_count() for f in imu)
    assert missing >= 50  # >= 0.25 s at 200 Hz
    st = r.of(wire.T_STATUS)[-1].status().streams[0]
    # the marks in the frames the last STATUS settled are exactly the ones the device counted
    settled = [f for f in imu if f.seq < st.frames_built + st.frames_skipped]
    assert sum(f.data().missing_count() for f in settled) == st.samples_missing
    assert st.sensor_errors >= 5 and st.online
    # frames keep flowing: a seq gap may only be a frame the device skipped (a loop a busy host
    # held up past a whole frame's slots), never one lost while the sensor was away
    seqs = [f.seq for f in imu]
    gaps = seqs[-1] - seqs[0] + 1 - len(seqs)
    assert 0 <= gaps <= st.frames_skipped and st.frames_dropped == 0, (gaps, st)
    after = imu_after_online(r)
    first_clean = next(i for i, f in enumerate(after) if sensor_clean(f))
    assert len(after) - first_clean >= 2
    # no relapse: no sensor error once it was back, and no sample marked missing for the sensor
    # (one missing after that can only be a loop overrun, and its cause flag says so)
    final = r.of(wire.T_STATUS)[-1].status()
    assert final.streams[0].sensor_errors == st_online.streams[0].sensor_errors and final.streams[0].online
    assert all(sensor_clean(f) for f in after[first_clean:]), "sensor samples missing after recovery"


def imu_after_online(r) -> list:
    """IMU DATA frames that arrived after the IMU's SENSOR_ONLINE event."""
    with r.lock:
        frames = list(r.frames)
    online = next((i for i, f in enumerate(frames) if f.type == wire.T_EVENT
                   and f.event().code == wire.EV_SENSOR_ONLINE and f.event().stream == 0), None)
    if online is None:
        return []
    return [f for f in frames[online + 1:] if f.type == wire.T_DATA and f.stream == 0]


def test_firmware_backpressure_drops_equal_host_gaps(vboard_factory):
    board = vboard_factory(link_rate="usb")
    cfg = default_config(ring_bytes=2048, status_period_ms=200)
    cfg["streams"][3]["period_us"] = 500  # analog at 2 kHz: ~8 kB/s on the link
    for s in cfg["streams"][1:3]:
        s["batch"] = 10  # 1 s frames: each slow stream sends one after the drops within the test
    r = boot(board, cfg)
    try:
        r.wait(lambda: r.of(wire.T_STATUS), what="first STATUS")
        board.set_backpressure(True)
        time.sleep(3.0)
        board.set_backpressure(False)
        r.wait(lambda: sum(r.dec.stats.missing_by_stream.values()) > 0, what="gaps on the host")
        time.sleep(1.0)  # a STATUS after the drops, then more DATA of every stream
        n = len(r.of(wire.T_STATUS))
        r.wait(lambda: len(r.of(wire.T_STATUS)) > n + 1, what="STATUS after the drops")
        time.sleep(1.2)
    finally:
        r.close()
    stats = r.dec.stats
    led = Ledger()
    for f in list(r.frames):
        led.frame(f)
    rep = led.report()
    assert rep.verdict == "ok" and not rep.total.not_reported, rep.total.line()
    assert rep.total.dropped_device > 0
    assert stats.corrupt_segments == 0


def test_firmware_commands_ack_nack_and_garbage(vboard_factory):
    board = vboard_factory(link_rate="usb")
    r = boot(board)
    try:
        r.wait(lambda: r.of(wire.T_HELLO), what="HELLO")
        # the first imu frame is out before SET_PERIOD goes, so it must carry the old period
        r.wait(lambda: [f for f in r.of(wire.T_DATA) if f.stream == 0], what="a first imu frame")
        r.send(wire.OP_PING, 101)
        r.send(wire.OP_SET_PERIOD, 102, 0, (10_000).to_bytes(4, "little"))  # imu to 100 Hz
        r.send(wire.OP_SET_PERIOD, 103, 2, (1_000).to_bytes(4, "little"))  # below the SHT31 minimum
        r.send(wire.OP_SET_PERIOD, 104, 9, (10_000).to_bytes(4, "little"))  # no stream 9
        r.send(0x33, 105)  # unknown opcode
        bad = bytearray(encode_command(wire.OP_PING, 106))
        bad[-3] ^= 0x55  # corrupt the CRC
        r.ser.write(bytes(bad))
        r.ser.write(b"\x00garbage\xff\x10\x00")  # not a command at all: skipped
        r.send(wire.OP_STOP, 107, 3)
        r.send(wire.OP_SEND_HELLO, 108)
        r.send(wire.OP_SEND_STATUS, 109)
        r.wait(lambda: len(r.acks()) >= 9, what="nine ACK/NACK")
        time.sleep(0.5)
        stopped_at = len([f for f in r.of(wire.T_DATA) if f.stream == 3])
        time.sleep(0.6)
        after = len([f for f in r.of(wire.T_DATA) if f.stream == 3])
        r.send(wire.OP_START, 110, 3)
        r.wait(lambda: len([f for f in r.of(wire.T_DATA) if f.stream == 3]) > after, what="analog again")
        n_status = len(r.of(wire.T_STATUS))
        r.send(wire.OP_SEND_STATUS, 111)
        r.wait(lambda: len(r.of(wire.T_STATUS)) > n_status, what="the last STATUS")
    finally:
        r.close()
    got = {a.token: (a.ok, a.opcode, a.reason) for a in r.acks()}
    assert got[101] == (True, wire.OP_PING, 0)
    assert got[102] == (True, wire.OP_SET_PERIOD, 0)
    assert got[103] == (False, wire.OP_SET_PERIOD, wire.R_BAD_ARGS)
    assert got[104] == (False, wire.OP_SET_PERIOD, wire.R_BAD_STREAM)
    assert got[105] == (False, 0x33, wire.R_UNKNOWN_OPCODE)
    assert got[106][0] is False and got[106][2] == wire.R_BAD_CRC
    assert got[107] == (True, wire.OP_STOP, 0) and got[110] == (True, wire.OP_START, 0)
    assert got[108][0] and got[109][0]
    assert after == stopped_at  # STOP stopped the analog stream
    assert len(r.of(wire.T_HELLO)) == 2
    st = r.of(wire.T_STATUS)[-1].status()
    assert st.cmd_errors == 4 and st.rx_errors >= 1
    imu_periods = [f.period_us for f in r.of(wire.T_DATA) if f.stream == 0]
    assert imu_periods[0] == 5000 and imu_periods[-1] == 10_000  # applied at a frame boundary
    # nothing lost: up to the last STATUS, a host gap may only be a frame the device skipped (a
    # loop a busy host held up past a whole frame's slots, counted)
    with r.lock:
        frames = list(r.frames)
    last = max(i for i, f in enumerate(frames) if f.type == wire.T_STATUS)
    led = Ledger()
    for f in frames[:last + 1]:
        led.frame(f)
    tot = led.report().total
    assert led.report().verdict == "ok" and tot.unexplained == tot.dropped_device == tot.lost_link == 0, tot.line()


def _boot_streaming(vboard_factory, config, **board):
    """A virtual board booted with `config`, read until a STATUS and 4 DATA frames came (closed)."""
    board = vboard_factory(link_rate="usb", **board)
    r = boot(board, config)
    try:
        r.wait(lambda: len(r.of(wire.T_STATUS)) >= 1 and len(r.of(wire.T_DATA)) >= 4, what="streaming")
    finally:
        r.close()
    return r


@pytest.mark.parametrize("config, reason", [
    (None, "no config.json"),
    ("{not json", "not valid JSON"),
    ({"streams": [{"sensor": "mpu6050", "period_us": -5}]}, "invalid"),
])
def test_firmware_config_fallback_streams_defaults(vboard_factory, config, reason):
    r = _boot_streaming(vboard_factory, config)
    ev = [e for e in r.events() if e.code == wire.EV_CONFIG_FALLBACK]
    assert ev and reason in ev[0].text
    assert [s["kind"] for s in r.of(wire.T_HELLO)[0].hello()["streams"]] == ["bme280", "mpu6050", "sht31", "analog"]
    assert "Traceback" not in r.text


def test_firmware_adc_ring_asked_of_a_board_without_one_reads_per_sample(vboard_factory):
    """a0 with `sample_us` (the RP2040's ADC into a DMA ring) on the virtual board's esp32 profile,
    whose port has no rp2.DMA: the boot says why in one CONFIG_FALLBACK line each (the driver's
    defaults, the period raised to its minimum), and a0 streams per sample, no crash."""
    cfg = default_config()
    a0 = next(s for s in cfg["streams"] if s["sensor"] == "analog")
    a0.update({"period_us": 50, "batch": 100, "settings": {"sample_us": 50}})
    cfg["streams"] = [a0]  # the heap budget counts the ring board.json offers: alone, it fits 220 kB
    r = _boot_streaming(vboard_factory, cfg, profile="esp32")
    why = [e.text for e in r.events() if e.code == wire.EV_CONFIG_FALLBACK]
    assert any("a0 settings rejected (sample_us needs an ADC with a DMA ring: this port has no rp2.DMA" in w
               for w in why), why
    assert any("a0 period_us 50 below the sensor minimum: 100" in w for w in why), why
    hello = next(s for s in r.of(wire.T_HELLO)[0].hello()["streams"] if s["name"] == "a0")
    assert hello["period_us"] == 100 and "sample_us" not in hello["config"]
    assert "Traceback" not in r.text, r.text[-3000:]
