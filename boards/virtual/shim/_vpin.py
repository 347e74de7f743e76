"""`machine.Pin` and `machine.Signal` of the virtual board, with the profile's constants.

No pin is wired to anything but the simulated buses and ADC, so a pin reads what the shim gives it:
an output reads what it drives, an input its pull (PULL_UP reads 1, PULL_DOWN and no pull 0).
`Pin(n)` is the same pin whatever object names it, as on the ports. `irq()` fires on the edges
that values set through the shim make: soft handlers are scheduled (micropython.schedule, as a
port's soft IRQ), hard ones called at once.
"""
import micropython

from _vipc import ESP32

if ESP32:  # ports/esp32/machine_pin.c (ESP-IDF gpio_mode_t / gpio_pull_mode_t / gpio_int_type_t)
    _IN, _OUT, _OD, _PU, _PD, _RISE, _FALL = 1, 3, 7, 0, 1, 1, 2
else:  # ports/rp2/machine_pin.c (pico-sdk GPIO_IRQ_EDGE_*)
    _IN, _OUT, _OD, _PU, _PD, _RISE, _FALL = 0, 1, 2, 1, 2, 8, 4
_state = {}  # pin id -> [level, mode, pull, handler, trigger, hard]


class _Irq:
    def __init__(self, st):
        self._st = st

    def trigger(self, t=None):
        if t is None:
            return self._st[4]
        self._st[4] = t

    def flags(self):
        return self._st[4]


class Pin:
    IN = _IN
    OUT = _OUT
    OPEN_DRAIN = _OD
    PULL_UP = _PU
    PULL_DOWN = _PD
    IRQ_RISING = _RISE
    IRQ_FALLING = _FALL

    def __init__(self, id, mode=-1, pull=-1, *, value=None):
        self._id = id
        st = _state.get(id)
        if st is None:
            st = _state[id] = [0, _IN, None, None, 0, False]
        self._st = st
        self.init(mode, pull, value=value)

    def init(self, mode=-1, pull=-1, *, value=None):
        st = self._st
        if mode != -1:
            st[1] = mode
        if pull != -1:
            st[2] = pull
        if value is not None:
            self._set(1 if value else 0)
        elif st[1] == _IN:
            self._set(1 if st[2] == _PU else 0)

    def _set(self, v):
        st = self._st
        old = st[0]
        st[0] = v
        h = st[3]
        if h is None or old == v or not st[4] & (_RISE if v else _FALL):
            return
        if st[5]:
            h(self)
        else:
            try:
                micropython.schedule(h, self)
            except RuntimeError:  # the schedule queue is full: a port loses this edge too
                pass

    def value(self, v=None):
        if v is None:
            return self._st[0]
        self._set(1 if v else 0)

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self._set(1)

    def off(self):
        self._set(0)

    def toggle(self):
        self._set(self._st[0] ^ 1)

    def low(self):
        self._set(0)

    def high(self):
        self._set(1)

    def mode(self, m=None):
        if m is None:
            return self._st[1]
        self.init(m)

    def pull(self, p=None):
        if p is None:
            return self._st[2]
        self.init(pull=p)

    def irq(self, handler=None, trigger=_FALL | _RISE, *, hard=False):
        st = self._st
        st[3] = handler
        st[4] = trigger if handler is not None else 0
        st[5] = hard
        return _Irq(st)

    def __repr__(self):
        return "Pin(%s)" % self._id


class Signal:
    """`Signal(pin, *, invert=False)` or `Signal(id, mode, pull, *, invert=False)`."""

    def __init__(self, pin, *args, invert=False, **kwargs):
        self._pin = pin if isinstance(pin, Pin) else Pin(pin, *args, **kwargs)
        self._inv = 1 if invert else 0

    def value(self, v=None):
        if v is None:
            return self._pin.value() ^ self._inv
        self._pin.value((1 if v else 0) ^ self._inv)

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)
