"""pagerless HIL: a pytest plugin (host/hil/plugin.py) that runs one test suite against real boards
and virtual boards. `Dut` (the device under test) and `Traffic` (its frames and commands) are what its
`dut` and `traffic` fixtures give a test."""
from host.hil.dut import Dut
from host.hil.target import Target, TargetError
from host.hil.traffic import HilError, Traffic

__all__ = ["Dut", "HilError", "Target", "TargetError", "Traffic"]
