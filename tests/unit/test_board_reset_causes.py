"""board.json `reset_causes`: what each board's machine.reset_cause() reports after a restart the
tests cause, so HIL expectations (tests/hil/test_boot.py, test_commands.py) come from the board."""
from __future__ import annotations

import json

import pytest

from firmware import wire
from host.device.boards import load_board, parse_board
from host.errors import BoardDefinitionError
from host.paths import BOARDS_DIR


def test_an_rp2040_reports_a_watchdog_reset_after_machine_reset_the_virtual_board_a_hard_one():
    for name in ("rp2040_pico", "emulated_rp2040"):  # ports/rp2/modmachine.c: watchdog_reboot()
        b = load_board(name)
        assert b.reset_cause("machine_reset") == wire.RC_WATCHDOG
        assert b.reset_cause("reset_button") == wire.RC_POWER_ON
    virtual = load_board("virtual")
    assert virtual.reset_cause("machine_reset") == virtual.reset_cause("reset_button") == wire.RC_HARD
    assert load_board("emulated_rp2040").reset_causes == load_board("rp2040_pico").reset_causes


def test_an_unstated_event_names_the_field_and_a_wrong_name_is_one_line():
    data = json.loads((BOARDS_DIR / "esp32_devkit" / "board.json").read_text())
    with pytest.raises(BoardDefinitionError, match="reset_causes.reset_button"):
        parse_board(data, "esp32").reset_cause("reset_button")
    data["reset_causes"] = {"machine_reset": "HARD", "power_glitch": "PWRON_RESET"}
    with pytest.raises(BoardDefinitionError) as e:
        parse_board(data, "esp32")
    lines = str(e.value).splitlines()
    assert any("reset_causes.machine_reset: is a string (\"HARD\")" in x for x in lines), lines
    assert any("reset_causes.power_glitch: is not a known field" in x for x in lines), lines
