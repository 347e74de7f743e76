"""Buses and sensor drivers from the board definition (``board.json`` next to main.py).

``load_board()`` reads the definition; ``Hardware(board)`` builds each I2C bus once (with its
``timeout_us``, so a stuck bus costs at most that per transaction) and each ADC, and
``open(spec)`` constructs a driver for a config stream's ``sensor``.  The driver class is found
by kind, as the module ``sensors/<kind>.py`` (no table here: see sensors/__init__.py); drivers get
their bus injected and prove their chip in ``__init__`` (OSError when it does not answer).
Everything here runs at boot or on a sensor's recovery (allocation allowed).
"""

import json

import machine
import sensors


class HardwareError(Exception):
    """The board definition does not describe the requested sensor or bus."""


def load_board(path="board.json"):
    """The board definition as a dict ({} when missing or unreadable)."""
    try:
        with open(path) as f:
            return json.loads(f.read())
    except (OSError, ValueError):
        return {}


def driver_class(kind):
    """The driver class for a board.json ``kind``: ``sensors/<kind>.py``'s ``DRIVER``."""
    try:
        return sensors.driver(kind)
    except LookupError as e:
        raise HardwareError(e.args[0])


class Hardware:
    def __init__(self, board):
        self.board = board
        self._i2c = {}
        self._adc = {}

    def wiring(self, sensor):
        """board.json sensor entry for a config ``sensor`` (a kind, or an ADC name)."""
        for s in self.board.get("sensors", ()):
            if s.get("kind") == sensor or s.get("adc") == sensor:
                return s
        raise HardwareError("board has no sensor %r" % (sensor,))

    def i2c(self, bus_id):
        bus = self._i2c.get(bus_id)
        if bus is None:
            spec = None
            for b in self.board.get("i2c", ()):
                if b.get("id") == bus_id:
                    spec = b
            if spec is None:
                raise HardwareError("board has no I2C bus %r" % (bus_id,))
            kw = {"freq": spec.get("freq", 400000), "timeout": spec.get("timeout_us", 50000)}
            if "scl" in spec and "sda" in spec:
                kw["scl"] = machine.Pin(spec["scl"])
                kw["sda"] = machine.Pin(spec["sda"])
            bus = machine.I2C(bus_id, **kw)
            self._i2c[bus_id] = bus
        return bus

    def adc(self, name):
        a = self._adc.get(name)
        if a is None:
            spec = None
            for d in self.board.get("adc", ()):
                if d.get("name") == name:
                    spec = d
            if spec is None:
                raise HardwareError("board has no ADC %r" % (name,))
            a = (machine.ADC(machine.Pin(spec["pin"])), spec.get("vref_mv", 3300), spec)
            self._adc[name] = a
        return a

    def _ring(self, adc, spec):
        """The ADC input's DMA ring (adcring.py), built once and only for a stream that asks for
        it (``sample_us``): it holds twice dma_ring_bytes of heap and two DMA channels."""
        key = ("ring", spec["name"])
        ring = self._adc.get(key)
        if ring is None:
            try:
                import rp2
            except ImportError:
                raise ValueError("sample_us needs an ADC with a DMA ring: this port has no rp2.DMA") from None
            import uctypes
            from adcring import AdcRing

            ring = AdcRing(adc, spec["channel"], spec["dma_ring_bytes"], rp2.DMA, machine.mem32, uctypes.addressof)
            self._adc[key] = ring
        return ring

    def address(self, sensor):
        """(bus object, 7-bit address) of an I2C sensor, or (None, None) for an analog one."""
        w = self.wiring(sensor)
        if "address" in w:
            return self.i2c(w.get("bus", 0)), w["address"]
        return None, None

    def open(self, sensor, settings):
        """Construct and return the driver for ``sensor`` (OSError if the chip does not answer)."""
        w = self.wiring(sensor)
        cls = driver_class(w["kind"])
        if "adc" in w:
            adc, vref, spec = self.adc(w["adc"])
            if settings.get("sample_us") and "dma_ring_bytes" in spec:
                adc = self._ring(adc, spec)  # converts on its own clock into a DMA ring
            kw = {"vref_mv": vref}
            kw.update(settings)
            return cls(adc, **kw)
        return cls(self.i2c(w.get("bus", 0)), address=w["address"], **settings)
