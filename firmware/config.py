"""App configuration (``config.json`` next to main.py): load, validate, fall back.

Format (every key optional; see firmware/config.json for the shipped default)::

    {"streams": [{"name": "imu", "sensor": "mpu6050", "period_us": 5000, "batch": 25,
                  "settings": {"accel_fs_g": 2}}, ...],
     "status_period_ms": 1000,   # STATUS frame period
     "ring_bytes": 8192,         # output ring (encoded frames waiting for the link)
     "autostart": true,          # stream from boot (else wait for START)
     "watchdog": true,           # true: WDT when the port can keep it fed at the REPL
                                 # (machine.Timer); "always": WDT regardless; false: none
     "heap_lock": false,         # run the steady-state loop under micropython.heap_lock()
     "max_iterations": 0,        # >0: leave the loop after that many passes (tests, bench)
     "idle_us_max": 20000,       # longest idle sleep between loop passes (at most housekeeping_us)
     "spin_us_max": 50,          # most us spun on ticks_us before a deadline (0: sleep only)
     "housekeeping_us": 20000,   # us between looks at commands, STATUS, watchdog, offline sensors
     "write_chunk": 256,         # most bytes per write() to the link
     "bench_jitter": false}      # keep a lateness histogram of stream 0 (bench only)

``sensor`` is a board.json sensor ``kind`` (or an ADC name such as "a0" for analog inputs);
``settings`` are the driver's keyword arguments.  ``load()`` never raises: a missing, corrupt
or invalid file gives the defaults plus a one-line reason for the CONFIG_FALLBACK event.
Loading allocates (boot time only).
"""

import json

_GLOBALS = {
    "status_period_ms": (int, 1000, 100, 60000),
    "ring_bytes": (int, 8192, 1024, 65536),
    "max_iterations": (int, 0, 0, 1 << 29),
    "idle_us_max": (int, 20000, 0, 100000),
    "spin_us_max": (int, 50, 0, 10000),
    "housekeeping_us": (int, 20000, 100, 100000),
    "write_chunk": (int, 256, 16, 4096),
}
_FLAGS = {"autostart": True, "heap_lock": False, "bench_jitter": False}
MAX_STREAMS = 16
MAX_BATCH = 512


def _default_streams(board):
    """One stream per sensor kind wired on the board (every kind in sensors/ when no board is
    given), each with its driver's ``DEFAULT_STREAM``."""
    # the sibling package: "sensors" on the board, "firmware.sensors" when the host imports
    # this file as firmware.config
    sensors = __import__(__name__[:__name__.rfind(".") + 1] + "sensors", None, None, ("kinds",))
    known = sensors.kinds()
    if board:
        kinds = []
        for s in board.get("sensors", ()):
            k = s.get("kind")
            if k in known and k not in kinds:
                kinds.append(k)
    else:
        kinds = known
    streams = []
    for k in kinds:
        name, period, batch = sensors.driver(k).DEFAULT_STREAM
        streams.append({"name": name, "sensor": k, "period_us": period, "batch": batch, "settings": {}})
    return streams


def _base():
    cfg = {"watchdog": True}
    for key in _GLOBALS:
        cfg[key] = _GLOBALS[key][1]
    for key in _FLAGS:
        cfg[key] = _FLAGS[key]
    return cfg


def defaults(board=None):
    """A config streaming every sensor wired on the board (every known kind when unknown)."""
    cfg = _base()
    cfg["streams"] = _default_streams(board)
    return cfg


def _check_int(v, lo, hi, what):
    if not isinstance(v, int) or isinstance(v, bool) or v < lo or v > hi:
        raise ValueError("%s must be an int in %d..%d" % (what, lo, hi))
    return v


def validate(raw):
    """A cleaned copy of `raw`; ValueError naming the first problem."""
    if not isinstance(raw, dict):
        raise ValueError("top level is not an object")
    cfg = _base()
    for key in _GLOBALS:
        if key in raw:
            _, _, lo, hi = _GLOBALS[key]
            cfg[key] = _check_int(raw[key], lo, hi, key)
    for key in _FLAGS:
        if key in raw:
            if not isinstance(raw[key], bool):
                raise ValueError("%s must be true or false" % key)
            cfg[key] = raw[key]
    if "watchdog" in raw:
        if raw["watchdog"] not in (True, False, "always"):
            raise ValueError('watchdog must be true, false or "always"')
        cfg["watchdog"] = raw["watchdog"]
    if "streams" in raw:
        streams = raw["streams"]
        if not isinstance(streams, list) or not 1 <= len(streams) <= MAX_STREAMS:
            raise ValueError("streams must be a list of 1..%d objects" % MAX_STREAMS)
        out = []
        names = []
        for i, s in enumerate(streams):
            if not isinstance(s, dict):
                raise ValueError("streams[%d] is not an object" % i)
            sensor = s.get("sensor")
            if not isinstance(sensor, str) or not sensor:
                raise ValueError("streams[%d].sensor missing" % i)
            name = s.get("name", sensor)
            if not isinstance(name, str) or name in names:
                raise ValueError("streams[%d].name missing or repeated" % i)
            names.append(name)
            period = _check_int(s.get("period_us"), 1, (1 << 30) - 1, "streams[%d].period_us" % i)
            batch = _check_int(s.get("batch", 10), 1, MAX_BATCH, "streams[%d].batch" % i)
            settings = s.get("settings", {})
            if not isinstance(settings, dict):
                raise ValueError("streams[%d].settings is not an object" % i)
            out.append({"name": name, "sensor": sensor, "period_us": period, "batch": batch,
                        "settings": settings})
        cfg["streams"] = out
    else:
        cfg["streams"] = _default_streams(None)
    return cfg


def wiring(board, sensor):
    """The board.json sensors entry behind a config ``sensor`` (a kind or an ADC name), None if
    not wired."""
    for s in (board or {}).get("sensors", ()):
        if s.get("kind") == sensor or s.get("adc") == sensor:
            return s
    return None


def kind_of(board, sensor):
    """The board.json kind behind a config ``sensor`` (a kind or an ADC name), None if not wired."""
    w = wiring(board, sensor)
    return None if w is None else w.get("kind")


def check_board(cfg, board):
    """ValueError naming the first stream whose sensor `board` does not wire or has no driver for
    (the board would skip that stream; the deploy refuses it)."""
    sensors = __import__(__name__[:__name__.rfind(".") + 1] + "sensors", None, None, ("kinds",))
    for i, s in enumerate(cfg["streams"]):
        kind = kind_of(board, s["sensor"])
        if kind is None:
            wired = [w.get("adc") or w.get("kind") for w in board.get("sensors", ())]
            raise ValueError("streams[%d].sensor %r is not wired on this board (wired: %s)"
                             % (i, s["sensor"], ", ".join(wired)))
        try:
            sensors.driver(kind)
        except LookupError as e:
            raise ValueError("streams[%d].sensor %r: %s" % (i, s["sensor"], e.args[0]))


def load(path="config.json", board=None):
    """(config, problem): problem is None when the file was used, else why the defaults are."""
    try:
        f = open(path)
    except OSError:
        return defaults(board), "no %s: defaults" % path
    try:
        with f:
            raw = json.loads(f.read())
    except (ValueError, OSError, MemoryError):
        return defaults(board), "%s is not valid JSON: defaults" % path
    try:
        return validate(raw), None
    except (ValueError, TypeError, KeyError) as e:
        return defaults(board), "%s invalid (%s): defaults" % (path, e)
