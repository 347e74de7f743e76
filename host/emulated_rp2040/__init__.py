"""The emulated RP2040: the user's own MicroPython UF2 on an instruction-level RP2040 (PyPI
`rp2040py`), its USB CDC on a pty, our simulated chips on its real I2C0 and ADC.

Modules, one concern each: `image` (where the UF2 comes from, and that it is one), `flash_store`
(the chip's flash kept on disk between runs), `i2c_bridge` (the I2C peripheral's byte hooks onto
the virtual board's bus model), `pin_probe` (the bit-banged zero-length probes of `I2C.scan()`,
answered at pin level), `serial_link` (USB CDC <-> the pty bridge), `board` (EmulatedBoard, the
runner), `cli` (`python -m host.emulated_rp2040`). docs/emulated-rp2040.md tells the story.
"""
