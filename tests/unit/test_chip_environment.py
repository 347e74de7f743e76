"""One environment per virtual board, shared by its chips (host/sensors/chip.py Environment), on the
board's own clock: co-located parts agree within their datasheet accuracy, noise has the
datasheet's sigma, the same seed gives the same readings, pressure moves like weather indoors."""
from __future__ import annotations

import statistics

import pytest

from host.sensors.chip import BoardClock, Environment
from host.sensors.sht31 import NOISE_RH, NOISE_T
from host.virtual_board.board import VirtualBoard

BME, SHT = 0x76, 0x44


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0  # the host's clock at power-on: any value, the board counts from it

    def __call__(self) -> float:
        return self.t


def powered(tmp_path, seed: int, name: str = "b"):
    board = VirtualBoard(tmp_path / f"{name}{seed}", seed=seed, register=False)
    clock = FakeClock()
    board.clock.start(clock)
    return board, clock


def bme_forced(board, clock) -> tuple[bytes, dict]:
    """A forced measurement at x1 oversampling as a driver does it: registers, wait, burst read."""
    b = board.buses
    b.write(0, BME, bytes((0xF2, 0x01, 0xF4, 0x25)))
    clock.t += 0.02
    b.write(0, BME, b"\xf7", more=True)
    raw = b.read(0, BME, 8)
    return raw, board.chip("bme280").truth()


def sht_single(board, clock, cmd: bytes = b"\x24\x00") -> tuple[bytes, dict]:
    board.buses.write(0, SHT, cmd)
    clock.t += 0.02
    raw = board.buses.read(0, SHT, 6)
    return raw, board.chip("sht31").truth()


def test_co_located_bme280_and_sht31_agree_within_their_accuracy(tmp_path):
    """BME280 +-0.5 degC / +-3 %RH, SHT31 +-0.2 degC / +-2 %RH: each part's offset is within its
    own figure, so two parts in the same air differ by at most the sum (plus a little noise)."""
    dt, drh = [], []
    for seed in range(30):
        board, clock = powered(tmp_path, seed)
        for _ in range(6):
            clock.t += 1800.0
            _, b = bme_forced(board, clock)
            _, s = sht_single(board, clock)
            dt.append(abs(b["temperature_c"] - s["temperature_c"]))
            drh.append(abs(b["humidity_rh"] - s["humidity_rh"]))
    assert max(dt) <= 0.5 + 0.2 + 0.05 and max(drh) <= 3.0 + 2.0 + 0.2
    assert statistics.median(dt) < 0.4 and statistics.median(drh) < 2.5  # was 2.3 degC and 10.6 %RH


@pytest.mark.parametrize("rep,cmd", [(0, b"\x24\x00"), (1, b"\x24\x0b"), (2, b"\x24\x16")])
def test_sht31_noise_has_the_datasheet_sigma(tmp_path, rep, cmd):
    """Repeatability (3 sigma) 0.04/0.08/0.15 degC and 0.08/0.15/0.21 %RH: sigma from consecutive
    differences 20 ms apart (the air barely moves in between), within 10 %."""
    board, clock = powered(tmp_path, 5)
    temps, hums = [], []
    for _ in range(2000):
        _, s = sht_single(board, clock, cmd)
        temps.append(s["temperature_c"])
        hums.append(s["humidity_rh"])
    for values, sigma in ((temps, NOISE_T[rep]), (hums, NOISE_RH[rep])):
        diffs = [b - a for a, b in zip(values, values[1:])]
        assert statistics.pstdev(diffs) / 2 ** 0.5 == pytest.approx(sigma, rel=0.10)
    assert NOISE_T == pytest.approx((0.04 / 3, 0.08 / 3, 0.15 / 3))


def test_same_seed_same_readings_on_the_board_clock(tmp_path):
    """Two boards with one seed, read at the same board times (their host clocks started 10^5 s
    apart), give the same bytes; another seed does not."""
    runs = []
    for seed, start in ((11, 1000.0), (11, 101000.0), (12, 1000.0)):
        board, clock = powered(tmp_path, seed, name=f"s{start:.0f}-")
        clock.t = start
        board.clock.start(clock)
        out = []
        for _ in range(20):
            clock.t += 7.3
            out.append(bme_forced(board, clock)[0])
            out.append(sht_single(board, clock)[0])
            board.buses.write(0, 0x68, b"\x3b", more=True)
            out.append(board.buses.read(0, 0x68, 14))
            out.append(board.adc_read(26).to_bytes(2, "little"))
        runs.append(out)
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_the_board_clock_starts_at_power_on():
    clock = FakeClock()
    bc = BoardClock(clock)
    assert bc() == 0.0
    bc.start()
    clock.t += 2.5
    assert bc() == 2.5


@pytest.mark.parametrize("seed", range(10))
def test_pressure_drifts_as_weather_does_indoors(seed):
    """No 15 Pa swings every 90 s (1.2 m of altitude): at most ~5 Pa in 90 s, ~2.5 hPa in an hour,
    and a day's range within a few hPa; temperature and humidity move slowly too."""
    env = Environment(seed)
    p = [env.pressure(t) for t in range(0, 86400, 10)]
    swing_90 = max(abs(b - a) for a, b in zip(p, p[9:]))
    swing_1h = max(abs(b - a) for a, b in zip(p, p[360:]))
    assert swing_90 < 6.0 and swing_1h < 250.0 and max(p) - min(p) < 600.0
    assert 95000 < min(p) and max(p) < 105000
    assert env.temperature.max_rate() * 3600 < 8.0  # degC per hour, at the steepest instant
    temps = [env.temperature(t) for t in range(0, 86400, 60)]
    assert max(abs(b - a) for a, b in zip(temps, temps[60:])) < 2.5 and max(temps) - min(temps) < 3.0
