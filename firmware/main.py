"""pagerless firmware boot entry: config, buses, sensors, then the sampler.

On a board main.py runs as ``__main__`` after boot.py; importing it does nothing.  ``main()``:

1. loads ``board.json`` (deployed next to this file) and ``config.json`` (missing, corrupt or
   invalid -> safe defaults and a CONFIG_FALLBACK event, never a crash);
2. builds the I2C buses and ADCs from the board definition and probes each configured sensor
   (a sensor that does not answer starts offline and is re-probed);
3. sends BOOT (and WATCHDOG_RESET after a watchdog reset); disables Ctrl-C before HELLO
   (``micropython.kbd_intr(-1)``: the link carries binary frames; a 0x03 from the host is still
   honoured by the command receiver); sends HELLO and one CALIB per stream;
4. starts the watchdog and runs the sampler until the host asks for the REPL (CMD REPL or
   Ctrl-C) or a reboot.

An unexpected exception becomes an UNHANDLED_EXCEPTION event, flushed with a bounded wait,
followed by ``machine.reset()``.
"""


def _reset_cause(machine, wire):
    try:
        rc = machine.reset_cause()
    except (AttributeError, OSError):
        return wire.RC_UNKNOWN
    for name, code in (("PWRON_RESET", wire.RC_POWER_ON), ("HARD_RESET", wire.RC_HARD),
                       ("WDT_RESET", wire.RC_WATCHDOG), ("DEEPSLEEP_RESET", wire.RC_DEEPSLEEP),
                       ("SOFT_RESET", wire.RC_SOFT)):
        if getattr(machine, name, None) == rc:
            return code
    return wire.RC_UNKNOWN


def _boot_id():
    try:
        import os

        return bytes(os.urandom(4))
    except (ImportError, AttributeError, OSError):
        import time

        t = time.ticks_us()
        return bytes((t & 0xFF, (t >> 8) & 0xFF, (t >> 16) & 0xFF, (t >> 24) & 0xFF))


def _watchdog(machine, mode, timeout_ms):
    """machine.WDT per config: True = only where a machine.Timer can keep it fed at the REPL."""
    if not mode or not timeout_ms or not hasattr(machine, "WDT"):
        return None
    if mode is True and not hasattr(machine, "Timer"):
        return None
    return machine.WDT(timeout=timeout_ms)


_feeder = None  # the REPL's WDT-feeding Timer: a virtual Timer nobody references is collected
# and its finaliser stops it (rp2, esp32), so the board would reset at the REPL after a GC


def _keep_fed(machine, wdt):
    """Back at the REPL the WDT cannot be stopped: feed it from a timer (where there is one)."""
    global _feeder
    if wdt is None or not hasattr(machine, "Timer"):
        return
    try:
        t = machine.Timer(-1) if hasattr(machine.Timer, "PERIODIC") else machine.Timer()
        t.init(period=500, mode=machine.Timer.PERIODIC, callback=lambda _t: wdt.feed())
        _feeder = t
    except (ValueError, OSError, TypeError):
        pass


def build(board, cfg, problems, out, boot_id, reset_cause, instream):
    """Streams, health, commands and sampler from the board definition and config."""
    import wire
    from commands import Commands
    from hardware import Hardware, HardwareError, driver_class
    from health import Health
    from sampler import Sampler
    from stream import Stream
    from version import FIRMWARE_VERSION

    hw = Hardware(board)
    health = Health(out, boot_id, reset_cause, hw)
    streams = []
    for spec in cfg["streams"]:
        try:
            cls = driver_class(hw.wiring(spec["sensor"])["kind"])
        except HardwareError as e:
            problems.append("stream %s skipped: %s" % (spec["name"], e))
            continue
        make = Stream
        if cfg.get("bench_jitter") and not streams:  # bench only: the first stream's jitter
            from jitter import JitterStream as make
        s = make(len(streams), spec["name"], spec["sensor"], cls, spec["period_us"], spec["batch"],
                 spec["settings"], boot_id)
        meta = s.info
        try:
            s.chip.set_bus(*hw.address(spec["sensor"]))
        except (HardwareError, OSError, ValueError) as e:
            problems.append("stream %s: bus: %s" % (meta.name, e))
        try:
            ok = s.open(hw)
        except (ValueError, TypeError) as e:  # settings the driver rejects: use its defaults
            problems.append("stream %s settings rejected (%s): driver defaults" % (meta.name, e))
            meta.settings = {}
            ok = s.open(hw)
        s.chip.online = ok
        if not ok:
            meta.hello_stale = True
        if s.period < meta.min_period:
            problems.append("stream %s period_us %d below the sensor minimum: %d"
                            % (meta.name, s.period, meta.min_period))
            s.period = s.new_period = meta.min_period
        streams.append(s)

    def info():
        return {
            "board": board.get("name", "unknown"), "mcu": board.get("mcu", "unknown"),
            "firmware": FIRMWARE_VERSION, "protocol": wire.VERSION, "ticks_period": 1 << 30,
            "reset_cause": reset_cause, "streams": [s.hello() for s in streams],
        }

    health.info = info
    commands = Commands(instream, out, boot_id)
    sampler = Sampler(streams, out, health, commands, cfg)
    for s in streams:
        s.attach(out, health)
    commands.sampler = sampler
    commands.health = health
    health.attach(streams, commands, sampler)
    health.build_hello(info())
    return sampler, health


def _configure(config, board):
    """(config, problems): config.json when it is valid and fits the heap this board has
    (budget.py, the estimate the deploy checks too), else the board's defaults and why."""
    import gc

    import budget

    cfg, problem = config.load("config.json", board)
    # a heap that grows on demand (board.json heap_grows: ESP32's split heap) has no pool to check
    # against yet: there the MemoryError guard in build() is the check
    if problem is None and not board.get("heap_grows"):
        gc.collect()
        over = budget.check(cfg, board, gc.mem_free() + gc.mem_alloc(), budget.word_size(),
                            budget.shim_in_heap())
        if over is not None:
            cfg, problem = config.defaults(board), "config.json %s: defaults" % over
    return cfg, [] if problem is None else [problem]


def _fallback(config, board, outstream, e, bare):
    """(config, output, reason) after a MemoryError building the streams: the board's defaults
    (`bare`: when even those did not fit, no stream and the smallest ring, so the host still
    gets HELLO, STATUS and the reason) and a fresh output ring (the caller dropped the old one)."""
    import gc

    import output

    cfg = config.defaults(board)
    if bare:
        cfg["streams"] = []
        cfg["ring_bytes"] = 1024
    gc.collect()
    out = output.Output(outstream, cfg["ring_bytes"], cfg["write_chunk"])
    return cfg, out, "%s do not fit the heap (%s): %s" % ("defaults" if bare else "config.json streams",
                                                          e.args[0] if e.args else "MemoryError",
                                                          "no streams" if bare else "defaults")


def main():
    import gc
    import sys

    import machine
    import micropython

    gc.collect()  # whatever boot.py left behind

    if hasattr(micropython, "alloc_emergency_exception_buf"):  # not on the unix port
        micropython.alloc_emergency_exception_buf(100)

    import config
    import output
    import wire
    from hardware import load_board

    board = load_board("board.json")
    cfg, problems = _configure(config, board)
    if not board:
        problems.append("no board.json: no sensors")
    outstream, instream = output.open_link(board.get("output"))
    out = output.Output(outstream, cfg["ring_bytes"], cfg["write_chunk"])
    boot_id = _boot_id()
    rc = _reset_cause(machine, wire)
    sampler = health = None
    wdt = None
    result = 0
    try:
        known = len(problems)
        for bare in (False, True, None):
            try:
                sampler, health = build(board, cfg, problems, out, boot_id, rc, instream)
                break
            except MemoryError as e:  # more than the budget foresaw: defaults, never a crash loop
                if bare is None:
                    raise
                out = None
                cfg, out, why = _fallback(config, board, outstream, e, bare)
                problems = problems[:known] + [why]
        health.event(wire.EV_BOOT, 255, rc)
        if rc == wire.RC_WATCHDOG:
            health.event(wire.EV_WATCHDOG_RESET)
        for p in problems:
            health.event(wire.EV_CONFIG_FALLBACK, 255, 0, p.encode())
        for s in sampler.streams:
            if not s.chip.online:
                health.event(wire.EV_SENSOR_OFFLINE, s.sid, 19)
        # From the first frame the host sees, a 0x03 inside a command must stay data: a host that
        # answers HELLO at once would otherwise lose its command to a KeyboardInterrupt. A real
        # Ctrl-C from here on is caught by the command receiver (RX_INTERRUPT).
        micropython.kbd_intr(-1)
        health.send_hello()
        out.flush(500)
        health.status()
        wdt = _watchdog(machine, cfg.get("watchdog"), board.get("wdt_timeout_ms", 0))
        sampler.wdt = wdt
        gc.collect()
        if cfg["autostart"]:  # the schedule starts now, not before the set-up above (no overrun)
            sampler.start()
        result = sampler.run()
    except Exception as e:  # noqa: BLE001 - the last line of defence: report, then reset
        # the sampler's own `finally` has unlocked the heap (unlocking twice would lock it:
        # heap_lock nests); heap_locked() exists only on some ports
        if getattr(micropython, "heap_locked", None) is not None and micropython.heap_locked():
            micropython.heap_unlock()
        _report_crash(out, boot_id, health, e)
        micropython.kbd_intr(3)
        machine.reset()
        return
    finally:
        micropython.kbd_intr(3)
    # left the loop: REPL, Ctrl-C, reboot or the end of a test/bench run; the last STATUS goes
    # after what is queued, so a full ring cannot refuse the counters the host balances with
    out.flush(500)
    if health is not None:
        health.status()
    out.flush(500)
    if result == 3:  # REBOOT
        machine.reset()
    _keep_fed(machine, wdt)
    if (result == 0 or result == 1) and sampler is not None:  # DONE or CMD REPL
        _print_summary(sampler, out)
    sys.stdout.write("\r\n")


def _report_crash(out, boot_id, health, e):
    import sys

    import wire

    try:
        import io

        buf = io.StringIO()
        sys.print_exception(e, buf)
        text = buf.getvalue()
    except Exception:  # noqa: BLE001
        text = repr(e)
    text = text.encode()[-160:]
    try:
        if health is not None:
            health.event(wire.EV_UNHANDLED_EXCEPTION, 255, 0, text)
        else:
            f = bytearray(wire.OVERHEAD + wire.EVENT_SIZE + len(text))
            n = wire.pack_event(f, boot_id, 0, 0, wire.EV_UNHANDLED_EXCEPTION, 255, 0, text)
            out.send(f, n)
        out.flush(500)
    except Exception:  # noqa: BLE001
        pass


def _print_summary(sampler, out):
    """One text line after a max_iterations run (tests and bench read it)."""
    import gc
    import json

    gc.collect()
    streams = sampler.streams
    summary = {
        "iterations": sampler.iterations,
        "sleeps": sampler.sleeps,
        "sleep_margin_us": sampler.margin,
        "busy_us": sampler.busy_us,
        "samples": sum(s.counts.frames * s.batch + s.i - s.counts.miss_overrun - s.counts.miss_sensor
                       - s.frame.f_over - s.frame.f_sens for s in streams),
        "heap_lock": sampler.heap_lock,
        "heap_locked": sampler.ran_locked,  # measured: the loop ended under heap_lock
        "free_heap_locked": sampler.free_locked,  # measured as the lock engaged and as the loop ended
        "overruns": sampler.health.overruns,
        "recoveries": sampler.health.recoveries,
        "frames_sent": out.sent,
        "frames_dropped": out.dropped,
        "free_heap": gc.mem_free(),
        "commands": sampler.commands.handled,
        "yielded": out.yielded,
        "streams": [{"id": s.sid, "frames": s.counts.frames, "dropped": s.counts.dropped,
                     "skipped": s.counts.skipped, "missing_overrun": s.counts.miss_overrun,
                     "missing_sensor": s.counts.miss_sensor, "errors": s.counts.errors, "online": s.chip.online}
                    for s in streams],
    }
    jitter = getattr(streams[0], "jitter_summary", None) if streams else None
    if jitter is not None:  # a bench run (config "bench_jitter")
        summary.update(jitter())
    print("\nPAGERLESS-SUMMARY " + json.dumps(summary))


if __name__ == "__main__":
    main()
