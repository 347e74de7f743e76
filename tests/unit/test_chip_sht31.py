"""SHT3x-DIS model against the Sensirion datasheet."""

import pytest

from host import sensors
from host.sensors.chip import Nack
from host.sensors.sht31 import SHT31


class FakeClock:
    def __init__(self, t=200.0):
        self.t = t

    def __call__(self):
        return self.t

    def advance(self, seconds):
        self.t += seconds


def crc8(data):
    """Datasheet 4.12, written out bit by bit: poly 0x31, init 0xFF, no reflection, no final XOR."""
    crc = 0xFF
    for byte in data:
        for bit in range(7, -1, -1):
            top = ((crc >> 7) ^ (byte >> bit)) & 1
            crc = ((crc << 1) & 0xFF) ^ (0x31 if top else 0)
    return crc


def cmd(chip, code):
    chip.write(bytes([code >> 8, code & 0xFF]))


def words(data):
    """Split into 16-bit words, checking each CRC."""
    out = []
    for i in range(0, len(data), 3):
        assert crc8(data[i:i + 2]) == data[i + 2], f"bad CRC at word {i // 3}"
        out.append(data[i] << 8 | data[i + 1])
    return out


def status(chip):
    cmd(chip, 0xF32D)
    return words(chip.read(3))[0]


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def chip(clock):
    return SHT31(0x44, seed=5, clock=clock)


def test_registry_and_addresses():
    assert sensors.kind("sht31").chip is SHT31
    assert SHT31.DEFAULT_ADDRESS == 0x44
    assert SHT31(0x45).address == 0x45
    with pytest.raises(ValueError):
        SHT31(0x46)


def test_crc_example():
    from host.sensors.sht31 import crc8 as model_crc8

    assert crc8(b"\xbe\xef") == 0x92
    assert model_crc8(b"\xbe\xef") == 0x92
    assert model_crc8(b"\x00\x00") == 0x81


@pytest.mark.parametrize("code,max_s", [(0x2400, 0.0155), (0x240B, 0.0065), (0x2416, 0.0045)])
def test_single_shot_without_stretching_nacks_until_done(chip, clock, code, max_s):
    cmd(chip, code)
    clock.advance(max_s - 0.0002)
    with pytest.raises(Nack):
        chip.read(6)
    clock.advance(0.0003)
    st, srh = words(chip.read(6))
    truth = chip.truth()
    assert abs(-45 + 175 * st / 65535 - truth["temperature_c"]) <= 175 / 65535
    assert abs(100 * srh / 65535 - truth["humidity_rh"]) <= 100 / 65535
    assert 15 <= truth["temperature_c"] <= 30 and 30 <= truth["humidity_rh"] <= 70
    with pytest.raises(Nack):
        chip.read(6)  # the result was consumed: nothing pending


@pytest.mark.parametrize("code,max_s", [(0x2C06, 0.0155), (0x2C0D, 0.0065), (0x2C10, 0.0045)])
def test_single_shot_with_stretching_holds_scl_for_the_measurement(chip, code, max_s):
    """The read is answered (no NACK) and reports how long SCL was held: the measurement time,
    which the bus adds to the transaction's wire time."""
    cmd(chip, code)
    chip.stretch_s = 0.0
    st, srh = words(chip.read(6))
    assert chip.stretch_s == pytest.approx(max_s)
    truth = chip.truth()
    assert st == round((truth["temperature_c"] + 45) * 65535 / 175)
    assert srh == round(truth["humidity_rh"] * 65535 / 100)


def test_read_with_nothing_pending_is_nacked(chip):
    with pytest.raises(Nack):
        chip.read(6)


def test_status_after_reset_and_clear(chip):
    st = status(chip)
    assert st & (1 << 4), "reset detected after power-up"
    assert st & (1 << 15), "alert pending after power-up"
    assert not st & (1 << 13)
    cmd(chip, 0x3041)
    assert status(chip) & ((1 << 15) | (1 << 4)) == 0


def test_heater_bit_and_effect(chip, clock):
    cmd(chip, 0x3041)
    cmd(chip, 0x2C06)
    chip.read(6)
    before = chip.truth()
    cmd(chip, 0x306D)
    assert status(chip) & (1 << 13)
    clock.advance(60.0)
    cmd(chip, 0x2C06)
    chip.read(6)
    heated = chip.truth()
    assert heated["temperature_c"] > before["temperature_c"] + 0.5
    assert heated["humidity_rh"] < before["humidity_rh"]
    cmd(chip, 0x3066)
    assert not status(chip) & (1 << 13)


def test_unknown_command_nacked_and_flagged(chip):
    cmd(chip, 0x3041)
    with pytest.raises(Nack):
        cmd(chip, 0x1234)
    assert status(chip) & (1 << 1)
    cmd(chip, 0x2C06)  # a good command clears it
    chip.read(6)
    assert not status(chip) & (1 << 1)


def test_write_checksum_bit(chip):
    limit = bytes([0x12, 0x34])
    with pytest.raises(Nack):
        chip.write(bytes([0x61, 0x1D]) + limit + bytes([crc8(limit) ^ 1]))
    assert status(chip) & 1
    chip.write(bytes([0x61, 0x1D]) + limit + bytes([crc8(limit)]))
    assert not status(chip) & 1
    cmd(chip, 0xE11F)
    assert words(chip.read(3)) == [0x1234]


def test_soft_reset(chip, clock):
    cmd(chip, 0x3041)
    cmd(chip, 0x306D)
    cmd(chip, 0x2400)
    cmd(chip, 0x30A2)
    st = status(chip)
    assert st & (1 << 4) and not st & (1 << 13), "reset flagged, heater off"
    clock.advance(0.02)
    with pytest.raises(Nack):
        chip.read(6)  # the measurement in progress was dropped


def test_periodic_mode_fetch_and_break(chip, clock):
    cmd(chip, 0x2130)  # 1 mps, high repeatability
    cmd(chip, 0xE000)
    with pytest.raises(Nack):
        chip.read(6)  # first result only after 15.5 ms
    clock.advance(0.016)
    cmd(chip, 0xE000)
    first = words(chip.read(6))
    cmd(chip, 0xE000)
    with pytest.raises(Nack):
        chip.read(6)  # fetched already; the next comes a second later
    with pytest.raises(Nack):
        cmd(chip, 0x2400)  # single shot while periodic is refused
    clock.advance(1.0)
    cmd(chip, 0xE000)
    assert words(chip.read(6)) != first
    cmd(chip, 0x3093)
    cmd(chip, 0x2C06)
    words(chip.read(6))


def test_serial_and_wrong_id_fault(chip):
    cmd(chip, 0x3780)
    serial = words(chip.read(6))
    chip.set_wrong_id(True)
    cmd(chip, 0xF32D)
    data = chip.read(3)
    assert crc8(data[:2]) != data[2], "identity check by CRC-valid status fails"
    cmd(chip, 0x3780)
    data = chip.read(6)
    assert crc8(data[:2]) != data[2]
    chip.set_wrong_id(False)
    cmd(chip, 0x3780)
    assert words(chip.read(6)) == serial


def test_short_and_long_reads(chip):
    cmd(chip, 0xF32D)
    assert len(chip.read(2)) == 2
    cmd(chip, 0xF32D)
    assert chip.read(5)[3:] == b"\xff\xff"


def test_freeze(chip, clock):
    cmd(chip, 0x2C06)
    held = chip.read(6)
    chip.freeze(True)
    for _ in range(3):
        clock.advance(30.0)
        cmd(chip, 0x2C06)
        assert chip.read(6) == held
    chip.freeze(False)
    clock.advance(30.0)
    cmd(chip, 0x2C06)
    assert chip.read(6) != held


def test_determinism():
    def run(seed):
        clock = FakeClock(3.0)
        chip = SHT31(0x44, seed=seed, clock=clock)
        out = []
        for code in (0x2400, 0x240B, 0x2416) * 3:
            cmd(chip, code)
            clock.advance(0.02)
            out.append(chip.read(6))
        return out

    assert run(9) == run(9)
    assert run(9) != run(10)


def test_slow_drift(chip, clock):
    previous = None
    for _ in range(30):
        clock.advance(5.0)
        cmd(chip, 0x2C10)
        chip.read(6)
        t = chip.truth()["temperature_c"]
        if previous is not None:
            assert abs(t - previous) < 0.03 * 5 + 0.6  # drift + low-repeatability noise
        previous = t
