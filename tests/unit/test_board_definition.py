"""board.json is validated once, on load: every mistake in a file is one line naming the file, the
field, what is wrong and what is expected; the host reads the result as typed fields."""

from __future__ import annotations

import json

import pytest

from host.device import boards
from host.device.boards import BoardDefinition, EsptoolFlash, Uf2Flash, VirtualFlash, load_board
from host.errors import BoardDefinitionError
from host.flash import main as flash_main


def _shipped(name: str) -> dict:
    return json.loads(boards.board_path(name).read_text())


@pytest.fixture
def write_board(tmp_path):
    """write_board(name, data) -> the load_board() result (or error) of `data` as boards/<name>/board.json."""
    def write(name: str, data: dict):
        path = tmp_path / name / "board.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(data))
        return path
    return write


def _problems(write_board, tmp_path, name: str, data: dict) -> list[str]:
    path = write_board(name, data)
    with pytest.raises(BoardDefinitionError) as info:
        load_board(name, boards_dir=tmp_path)
    lines = str(info.value).splitlines()
    assert list(info.value.problems) == lines
    assert all(line.startswith(f"{path}: ") for line in lines), lines
    return [line[len(f"{path}: "):] for line in lines]


@pytest.mark.parametrize("name", boards.board_names())
def test_every_shipped_board_loads(name):
    board = load_board(name)
    assert isinstance(board, BoardDefinition) and board.name == name
    assert board.raw == _shipped(name)
    assert board.sensors and board.usb is not None and board.wdt_timeout_ms > 0


def test_typed_fields_of_the_shipped_boards():
    esp, rp2, vb = load_board("esp32_devkit"), load_board("rp2040_pico"), load_board("virtual")
    assert esp.flash == EsptoolFlash(chip="esp32", chip_id=0, offset=0x1000, flash_size=4 << 20, baud=460800)
    assert isinstance(rp2.flash, Uf2Flash) and rp2.flash.drive_label == "RPI-RP2"
    assert isinstance(vb.flash, VirtualFlash) and vb.flash_method == "virtual"
    assert str(rp2.usb) == "2E8A:0005" and str(rp2.bootloader_usb) == "2E8A:0003"
    assert [(s.kind, s.bus, s.address, s.adc) for s in rp2.sensors] == [
        ("bme280", 0, 0x76, None), ("mpu6050", 0, 0x68, None), ("sht31", 0, 0x44, None), ("analog", None, None, "a0")]
    assert vb.link.default_rate == "usb" and vb.link.default_bytes_per_s == 1_000_000
    assert (rp2.adc[0].channel, rp2.adc[0].dma_ring_bytes) == (0, 8192)  # firmware/adcring.py's ring
    assert (vb.adc[0].channel, vb.adc[0].dma_ring_bytes) == (0, 8192)  # its shim models the ADC and DMA (_vregs.py)
    assert vb.heap_profiles == {"rp2040": "376k", "esp32": "220k"}
    with pytest.raises(BoardDefinitionError, match="flash method 'uf2', not 'esptool'"):
        rp2.flash_as(EsptoolFlash)


def _set(data: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        data = data[int(key)] if key.isdigit() else data[key]
    if value is _DELETE:
        del data[last]
    else:
        data[last] = value


_DELETE = object()

# (base board, its mistake, how the one problem line starts after the file's path)
MISTAKES = {
    "missing field": ("rp2040_pico", lambda d: _set(d, "title", _DELETE),
                      "title: missing; expected a non-empty string"),
    "missing flash field": ("esp32_devkit", lambda d: _set(d, "flash.offset", _DELETE),
                            "flash.offset: missing; expected an integer >= 0"),
    "wrong type": ("esp32_devkit", lambda d: _set(d, "flash.offset", "0x1000"),
                   'flash.offset: is a string ("0x1000"); expected an integer >= 0'),
    "bool for int": ("rp2040_pico", lambda d: _set(d, "wdt_timeout_ms", True),
                     "wdt_timeout_ms: is true; expected an integer >= 1"),
    "bad family id": ("rp2040_pico", lambda d: _set(d, "flash.family_id", 0xE43BFF56),
                      "flash.family_id: is 0xe43bff56, not the UF2 family of rp2040; expected 0xe48bff56"),
    "unknown flash method": ("rp2040_pico", lambda d: _set(d, "flash.method", "dfu"),
                             "flash.method: is 'dfu'; expected one of esptool, uf2, virtual"),
    "esp chip id mismatch": ("esp32_devkit", lambda d: _set(d, "flash.chip_id", 9),
                             "flash.chip_id: is 9 (ESP32-S3) but flash.chip is 'esp32'"),
    "field of another method": ("rp2040_pico", lambda d: _set(d, "flash.offset", 4096),
                                "flash.offset: is not a known field; expected one of method, family_id"),
    "unknown field": ("rp2040_pico", lambda d: _set(d, "wdt_timout_ms", 4000),
                      "wdt_timout_ms: is not a known field"),
    "bad mpy arch": ("rp2040_pico", lambda d: _set(d, "mpy_arch", "armv6-m"),
                     "mpy_arch: is 'armv6-m'; expected an mpy-cross arch"),
    "bad heap": ("rp2040_pico", lambda d: _set(d, "heap", "192 KB"),
                 'heap: is a string ("192 KB"); expected a heap size'),
    "usb id out of range": ("rp2040_pico", lambda d: _set(d, "usb.pid", 0x10000),
                            "usb.pid: is an integer (65536); expected an integer in 0..65535"),
    "duplicate sensor": ("rp2040_pico", lambda d: d["sensors"].append({"kind": "bme280", "bus": 0, "address": 0x77}),
                         "sensors[4]: duplicate sensor: kind 'bme280' on I2C is already wired at sensors[0]"),
    "same address twice": ("rp2040_pico", lambda d: _set(d, "sensors.1.address", 0x76),
                           "sensors[1]: duplicate sensor: address 0x76 on bus 0 is already wired at sensors[0]"),
    "bus id not defined": ("rp2040_pico", lambda d: _set(d, "sensors.0.bus", 3),
                           "sensors[0].bus: bus 3 is not defined; expected one of the i2c ids (0)"),
    "adc not defined": ("rp2040_pico", lambda d: _set(d, "sensors.3.adc", "a1"),
                        "sensors[3].adc: ADC input 'a1' is not defined"),
    "address out of range": ("rp2040_pico", lambda d: _set(d, "sensors.2.address", 0x80),
                             "sensors[2].address: is an integer (128); expected a 7-bit I2C address (8..119)"),
    "empty kind": ("rp2040_pico", lambda d: _set(d, "sensors.2.kind", ""),
                   'sensors[2].kind: is a string (""); expected a non-empty string'),
    "i2c and adc at once": ("rp2040_pico", lambda d: _set(d, "sensors.3.address", 0x50),
                            "sensors[3]: has both adc and bus/address"),
    "duplicate bus": ("rp2040_pico", lambda d: d["i2c"].append({"id": 0, "sda": 6, "scl": 7}),
                      "i2c[1].id: bus 0 is defined twice"),
    "name is not the folder": ("rp2040_pico", lambda d: _set(d, "name", "pico"),
                               "name: is 'pico'; expected 'rp2040_pico'"),
    "default rate not a rate": ("virtual", lambda d: _set(d, "link.default_rate", "uart9600"),
                                "link.default_rate: is 'uart9600'"),
    "unlimited is reserved": ("virtual", lambda d: _set(d, "link.rates.unlimited", 1),
                              "link.rates.unlimited: is a rate name the tools"),
    "virtual board without link": ("virtual", lambda d: _set(d, "link", _DELETE),
                                   "link: missing; expected an object"),
    "ring not a power of two": ("rp2040_pico", lambda d: _set(d, "adc.0.dma_ring_bytes", 5000),
                                "adc[0].dma_ring_bytes: is an integer (5000); expected a power of two in 64..32768"),
    "ring without its channel": ("rp2040_pico", lambda d: _set(d, "adc.0.channel", _DELETE),
                                 "adc[0].channel: missing; expected an integer in 0..3"),
    "sensors not a list": ("rp2040_pico", lambda d: _set(d, "sensors", {"kind": "bme280"}),
                           "sensors: is an object; expected a list"),
}


@pytest.mark.parametrize("case", list(MISTAKES))
def test_each_mistake_is_one_line(write_board, tmp_path, case):
    base, mistake, expected = MISTAKES[case]
    data = _shipped(base)
    mistake(data)
    (line,) = _problems(write_board, tmp_path, base, data)
    assert line.startswith(expected), line


def test_unknown_sensor_kind_is_named_when_the_host_registry_lists_kinds(write_board, tmp_path):
    import host.sensors

    if not callable(getattr(host.sensors, "kinds", None)):
        pytest.skip("host.sensors has no kinds() registry: any non-empty kind is accepted")
    data = _shipped("rp2040_pico")
    data["sensors"][2]["kind"] = "sht99"
    (line,) = _problems(write_board, tmp_path, "rp2040_pico", data)
    assert line.startswith("sensors[2].kind: is 'sht99', not a known sensor kind; expected one of ")
    assert "sht31" in line


def test_three_mistakes_are_three_lines(write_board, tmp_path):
    data = _shipped("esp32_devkit")
    del data["mcu"]
    data["flash"]["baud"] = "fast"
    data["sensors"][1]["bus"] = 2
    lines = _problems(write_board, tmp_path, "esp32_devkit", data)
    assert [line.split(":")[0] for line in lines] == ["mcu", "flash.baud", "sensors[1].bus"]


def test_not_an_object_and_not_json(write_board, tmp_path):
    assert _problems(write_board, tmp_path, "rp2040_pico", ["rp2040"]) == [
        "(top level): is a list; expected a JSON object"]
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "board.json").write_text("{")
    with pytest.raises(BoardDefinitionError, match="cannot read .*broken/board.json"):
        load_board("broken", boards_dir=tmp_path)


def test_flash_cli_prints_each_mistake_on_its_own_line(write_board, tmp_path, monkeypatch, capsys):
    data = _shipped("rp2040_pico")
    data["flash"]["family_id"] = "0xE48BFF56"
    data["led"] = -1
    write_board("rp2040_pico", data)
    monkeypatch.setattr(boards, "BOARDS_DIR", tmp_path)
    image = tmp_path / "fw.uf2"
    image.write_bytes(b"\0" * 512)
    assert flash_main(["-q", "firmware", "--board", "rp2040_pico", "--image", str(image)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith("flash.py: error: ") for line in err), err
    assert "flash.family_id: is a string" in err[0] and "led: is an integer (-1)" in err[1]


def test_link_rates_and_the_monitors_line_rate_come_from_board_json():
    from host.monitor import _board_line_rate
    from host.virtual_board.board import link_rates

    rates = _shipped("virtual")["link"]["rates"]
    assert link_rates() == {**rates, "unlimited": None}
    assert _board_line_rate("virtual") == rates[_shipped("virtual")["link"]["default_rate"]]
    assert _board_line_rate("rp2040_pico") is None and _board_line_rate("no-such-board") is None


def test_reset_causes_have_one_spelling():
    from firmware import wire
    from host.virtual_board import reset_causes as rc

    assert wire.RESET_CAUSE_NAMES[wire.RC_DEEPSLEEP] == "deep-sleep"
    assert rc.cause_name(rc.DEEPSLEEP_RESET) == "deep-sleep"
    assert rc.cause_name(rc.WDT_RESET) == wire.RESET_CAUSE_NAMES[wire.RC_WATCHDOG] == "watchdog"
    assert rc.cause_name(99) == "unknown"
