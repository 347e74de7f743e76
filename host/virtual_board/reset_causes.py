"""Reset causes of the virtual board: the machine.reset_cause() values of its `machine` shim (as on
the rp2 and esp32 ports) and their wire codes.  They are not the wire's RC_* codes, and
WIRE_RESET_CAUSE is the one place that maps the ones to the others."""
from __future__ import annotations

from firmware import wire

PWRON_RESET, HARD_RESET, WDT_RESET, DEEPSLEEP_RESET, SOFT_RESET = 1, 2, 3, 4, 5
WIRE_RESET_CAUSE = {PWRON_RESET: wire.RC_POWER_ON, HARD_RESET: wire.RC_HARD, WDT_RESET: wire.RC_WATCHDOG,
                    DEEPSLEEP_RESET: wire.RC_DEEPSLEEP, SOFT_RESET: wire.RC_SOFT}


def cause_name(cause: int) -> str:
    """The protocol's name (firmware/wire.py) of a machine.reset_cause() value: "power-on", "watchdog", ..."""
    return wire.RESET_CAUSE_NAMES[WIRE_RESET_CAUSE.get(cause, wire.RC_UNKNOWN)]
