"""Heap budget of an app config: a conservative estimate of the bytes a board needs to boot it.

One estimate for both sides, so a config the deploy accepts is one the board accepts:
``host/flash.py deploy --config`` compares it with board.json's ``heap`` (``usable(heap)``), and
``main.py`` at boot with the heap it really has (``gc.mem_free() + gc.mem_alloc()``), falling
back to the board's default streams (CONFIG_FALLBACK) instead of crash-looping on MemoryError.

Needed = steady state + boot transients:

- steady: the firmware's modules and boot objects (``_BASE``; on the virtual board also its
  ``machine`` shim, ``_SHIM``, which a real board has in ROM), each driver module in use
  (``_MODULE``), the FIFO burst reader if a stream runs at its chip's FIFO period (``_BURST``),
  an ADC's DMA ring (``_ADCRING`` and twice ``dma_ring_bytes``, for its alignment),
  per stream its objects (``_STREAM``), its frame buffer
  (``wire.data_frame_size``) and one memoryview slot plus a tuple entry per sample (5 words),
  and the output ring (``ring_bytes``);
- transients: building HELLO (per stream dicts and JSON text, ``_PEAK_STREAM`` plus
  ``_PEAK_CHANNEL`` per channel), the slot tuples (a word per sample) and ``_PEAK``; the heap
  fragments while the streams are built, so a boot fails well before the steady figure reaches
  the heap size.

A driver class may state its own ``HEAP_MODULE``/``HEAP_STREAM`` (bytes on a 64-bit port); the
defaults cover the four shipped kinds.  The constants are measured on the virtual board (the
64-bit unix port, .mpy as deployed; ``used`` = heap pool minus ``gc.mem_free()`` after boot,
with the whole app alive) and are upper bounds there.  On a 32-bit port objects are smaller
(0.58..0.70 of the 64-bit figure, measured under the 32-bit WASI build): object terms are taken
at 7/10 there, raw bytes (frames, ring) at full size.  Not yet measured on a real RP2040 or ESP32:
by this estimate the shipped config.json needs ~115 KB, over esp32_devkit's 112k heap.

Measured on the virtual board, rp2040 profile (pool 194304 bytes)::

    config (ring 8192 unless noted)      used after boot   largest that boots   estimate
    no stream (ring 1024)                 104736
    1..16 x mpu6050 batch 10              111392 + ~3070/stream   10 (11 fails)   see tests
    mpu6050 x1 / x5, batch 1 (ring 1024)  111392 / 121856
    bme280  x1 / x5, batch 1 (ring 1024)  112544 / 125952
    sht31   x1 / x5, batch 1 (ring 1024)  110560 / 122176     15 (16 fails)
    analog  x1 / x5, batch 1 (ring 1024)  108608 / 117184
    4 kinds mixed, batch 50               146336 (x4)          5 (6 fails)
    4 kinds mixed, batch 200              162368 (x3)          3 (4 fails)
    mpu6050 batch 512                     146208 (x1)          1 (2 fails)
    mpu6050 batch 10, ring 65536          176384 (x1)          1 (2 fails)

Per sample, steady: sample_size + 40 bytes (a 32-byte memoryview block and an 8-byte tuple entry).
Every failing configuration above is refused by at least 5 KB; on the esp32 profile (pool
113280) the 64-bit VM cannot hold the firmware with any stream (104736 bytes before the first).
tests/micropython/test_config_budget.py measures again and checks estimate >= used.
Runs at boot and on the host; allocates (boot only).
"""

_PKG = __name__[:__name__.rfind(".") + 1]  # "" on the board, "firmware." on the host
wire = __import__(_PKG + "wire", None, None, ("data_frame_size",))
sensors = __import__(_PKG + "sensors", None, None, ("driver",))
config = __import__(_PKG + "config", None, None, ("kind_of", "wiring"))

# bytes on a 64-bit port (see the module docstring); object terms scale by 3/4 on 32 bits
_BASE = 94000  # modules + boot objects, no stream, no ring (measured 103712 with the shim; +2.5 KB at 64cbae0; +2 KB at e91eb76, where one stream used 232 B less than the estimate and a loaded run went over)
_SHIM = 66000  # the virtual board's shim modules (machine, _vi2c, _vtimer, ..., rp2 and its ADC/DMA registers; in ROM on a board): 49952 + 14568 for rp2 + _vregs
_MODULE = 5000  # one driver module (measured 1728..4456)
_STREAM = 3600  # one stream's objects, HELLO entry, CALIB, driver instance (measured 2144..3352)
_BURST = 3500  # burst.py and its Burst, once: a stream at its chip's FIFO period (measured 2528..3008)
_ADCRING = 3000  # adcring.py and an AdcRing with its two DMA channels (rp2 only; not measured alone)
_PEAK = 5000
_PEAK_STREAM = 1600
_PEAK_CHANNEL = 320


def word_size():
    """Bytes per machine word of the running port (8 on the 64-bit unix port)."""
    import sys

    return 8 if sys.maxsize > 0x7FFFFFFF else 4


def heap_bytes(text):
    """board.json's heap size ("192k", "1m", "65536") in bytes."""
    text = str(text)
    unit = {"k": 1024, "m": 1024 * 1024}.get(text[-1:].lower(), 1)
    return int(text[:-1] if unit > 1 else text) * unit


def usable(heap, word=4):
    """The GC pool of a heap of `heap` bytes (its allocation tables take the rest)."""
    return heap - heap // (8 * word)


def shim_in_heap():
    """True on the virtual board, whose `machine` is a Python module (built in on a board)."""
    import machine

    return hasattr(machine, "__file__")


def estimate(cfg, board, word=8, shim=False):
    """Bytes of heap a validated config needs to boot on `board` (dict) on a `word`-byte port
    (`shim`: the virtual board's machine module is in the heap too).  Streams whose sensor is
    not wired or has no driver are skipped, as the board skips them."""
    blk = 4 * word  # a GC block

    def obj(n):
        return n if word >= 8 else n * 7 // 10

    def alloc(n):
        return (n + blk - 1) // blk * blk + blk  # the data, rounded to blocks, plus the object

    need = obj(_BASE + _PEAK + (_SHIM if shim else 0)) + alloc(cfg["ring_bytes"])
    seen = []
    burst = False
    for s in cfg["streams"]:
        kind = config.kind_of(board, s["sensor"]) if board else s["sensor"]
        try:
            cls = sensors.driver(kind)
        except LookupError:
            continue
        if kind not in seen:
            seen.append(kind)
            need += obj(getattr(cls, "HEAP_MODULE", _MODULE))
        fifo = getattr(cls, "fifo_period", None)
        at_fifo = fifo is not None and fifo(**s.get("settings", {})) == s["period_us"]
        if at_fifo and not burst:
            burst = True
            need += obj(_BURST)
        ring = _ring_bytes(board, s["sensor"]) if at_fifo else 0
        if ring:  # an ADC into a DMA ring: the ring is cut from a buffer twice its size (alignment)
            need += obj(_ADCRING) + alloc(2 * ring)
        batch = s["batch"]
        need += obj(getattr(cls, "HEAP_STREAM", _STREAM) + _PEAK_STREAM + _PEAK_CHANNEL * len(cls.CHANNELS))
        need += alloc(wire.data_frame_size(batch, cls.SAMPLE_SIZE)) + batch * 6 * word
    return need


def _ring_bytes(board, sensor):
    """board.json's dma_ring_bytes of the ADC a config `sensor` (a kind or an ADC name) is
    wired to, 0 when none (or not on an ADC)."""
    w = config.wiring(board, sensor)
    for a in (board or {}).get("adc", ()) if w and w.get("adc") else ():
        if a.get("name") == w["adc"]:
            return a.get("dma_ring_bytes", 0)
    return 0


def check(cfg, board, heap, word=8, shim=False):
    """None when the config fits a GC pool of `heap` bytes, else the one-line reason."""
    need = estimate(cfg, board, word, shim)
    if need > heap:
        return "needs about %d bytes of heap, the board has %d" % (need, heap)
    return None
