"""A seeded fault run: the real firmware on a virtual board under a random schedule of faults, while
the monitor's live pipeline (`LiveFeed` + `Recorder`, exactly as `pagerless-monitor --record`)
records it; then the recording's ledger beside the board's own ground truth.

The schedule is a pure function of the seed (`schedule`), so a failing seed replays.  Faults that
only disturb bytes or sensors overlap freely; the ones that end or hide a boot (port loss, reset,
hang) never overlap each other, so every boot the runner saw is one the host could see.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from firmware import wire
from host.device.link import Link
from host.device.recording import Kind, Recorder, read_recording
from host.monitoring.export import load
from host.monitoring.feeds import LiveFeed
from host.monitoring.ledger_lines import Report
from host.monitoring.session import Session
from host.protocol.decoder import Decoder
from host.protocol.frames import Frame
from host.testkit.fwboard import install
from host.virtual_board.scenario import Event, ScenarioRunner

#: every fault kind of the virtual board's API the schedule draws from
KINDS = ("unplug", "nack", "stuck", "bit_errors", "drop_bytes", "backpressure", "port_loss", "reset", "hang")
#: kinds that end a boot or hide the port: at most one at a time, with time to come back after
EXCLUSIVE = {"port_loss": 1.5, "reset": 2.5, "hang": 7.0}  # seconds reserved after the fault ends
CHIPS = ("bme280", "mpu6050", "sht31")
CONVERSION = {"sht31"}  # chips CONFIG reads through a conversion the loop starts (not free-running)
#: a config fast enough to fill the ring under backpressure within a fault's span
CONFIG = {
    "streams": [
        {"name": "imu", "sensor": "mpu6050", "period_us": 2000, "batch": 25},
        {"name": "env", "sensor": "bme280", "period_us": 20000, "batch": 10},
        {"name": "rh", "sensor": "sht31", "period_us": 50000, "batch": 8},
        {"name": "a0", "sensor": "analog", "period_us": 2000, "batch": 50},
    ],
    "status_period_ms": 500, "ring_bytes": 4096, "autostart": True, "watchdog": True,
}


def schedule(seed: int, span: float) -> list[Event]:
    """Faults (and their undoing) over `span` seconds, drawn from `seed`."""
    r = random.Random(seed)
    events: list[Event] = []
    t, busy_until = 0.5, 0.0
    while t < span:
        kind = r.choice(KINDS)
        if kind in EXCLUSIVE and t < busy_until:
            kind = r.choice([k for k in KINDS if k not in EXCLUSIVE])
        d = round(r.uniform(0.3, 2.0), 2)
        chip = r.choice(CHIPS)
        if kind == "unplug":
            events += [Event(t, "unplug", (chip,)), Event(t + d, "replug", (chip,))]
        elif kind == "nack":
            events += [Event(t, "set_nack_rate", (chip, round(r.uniform(0.1, 0.6), 2))),
                       Event(t + d, "set_nack_rate", (chip, 0.0))]
        elif kind == "stuck":
            d = min(d, 1.0)
            events += [Event(t, "set_bus_stuck", (True,)), Event(t + d, "set_bus_stuck", (False,))]
        elif kind == "bit_errors":
            events += [Event(t, "set_bit_error_rate", (round(r.uniform(2e-5, 5e-4), 6),)),
                       Event(t + d, "set_bit_error_rate", (0.0,))]
        elif kind == "drop_bytes":
            events += [Event(t, "set_drop_rate", (round(r.uniform(2e-5, 5e-4), 6),)),
                       Event(t + d, "set_drop_rate", (0.0,))]
        elif kind == "backpressure":
            events += [Event(t, "set_backpressure", (True,)), Event(t + d, "set_backpressure", (False,))]
        elif kind == "port_loss":
            events += [Event(t, "disconnect", (d,))]  # the board brings the port back after d
        elif kind in ("reset", "hang"):
            d = 0.0
            events += [Event(t, kind, ())]
        if kind in EXCLUSIVE:
            busy_until = t + d + EXCLUSIVE[kind]
        t = round(t + r.uniform(0.3, 1.5), 2)
    return sorted(events, key=lambda e: e.at)


def fault_kind(e: Event) -> str | None:
    """The fault an applied event starts (None for an event that undoes one)."""
    a = e.action
    if a in ("replug",) or (a != "disconnect" and e.args[-1:] in ((0.0,), (False,))):
        return None
    return {"set_nack_rate": "nack", "set_bus_stuck": "stuck", "set_bit_error_rate": "bit_errors",
            "set_drop_rate": "drop_bytes", "set_backpressure": "backpressure", "disconnect": "port_loss"}.get(a, a)


@dataclass
class Outcome:
    """What one seeded run left: the recording's ledger and the board's ground truth."""
    seed: int
    recording: Path
    report: Report                   # the ledger of the recording, loaded as `monitor stats` does
    live: Report                     # the live session's own ledger at the end
    applied: list[Event]
    causes: list[int]                # reset cause of every boot of the run, as the runner made them
    link: dict                       # the pty bridge's counters over the run (bytes dropped, bits flipped, ...)
    frames: list[Frame] = field(default_factory=list)  # every frame in the recording, decoded afresh
    corrupt_segments: int = 0

    @property
    def faults(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for e in self.applied:
            k = fault_kind(e)
            if k:
                out[k] = out.get(k, 0) + 1
        return out


def _pump(feed: LiveFeed, seconds: float, until=None) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        feed.poll(0.05)
        if until is not None and until():
            return True
    return False


def _hung(board) -> bool:
    return bool(getattr(board._ipc, "hung", False))


def _clear(board) -> None:
    for chip in CHIPS:
        board.replug(chip)
        board.set_nack_rate(chip, 0.0)
    board.set_bus_stuck(False)
    board.set_bit_error_rate(0.0)
    board.set_drop_rate(0.0)
    board.set_backpressure(False)
    board.reconnect()


def run(board, seed: int, span: float, directory: Path, log=print) -> Outcome:
    """Install the firmware on a running `board`, record it through the monitor's live pipeline
    while the seed's faults come and go for `span` seconds, stop every stream (the STATUS that
    follows carries the final counters), and load the recording."""
    install(board.fs, CONFIG)
    join_late = random.Random(seed ^ 0x5EED).random() < 0.5  # attach to a board already streaming
    n0 = len(board.boots)
    board.power_cycle()
    board.wait_boot(n0 + 1)
    if join_late:
        time.sleep(1.0)
    rec_path = Path(directory) / f"seed{seed}.rec"
    link = Link(board.port, locate=lambda: board.port, retry_interval=0.1)
    link.open()
    session = Session()
    feed = LiveFeed(link, session, Recorder(rec_path))
    feed.reader.meta({"tool": "faultrun", "seed": seed, "port": board.port})
    runner = ScenarioRunner(board, schedule(seed, span), log=lambda text: log(f"seed {seed}: {text}"))
    stats0 = dict(vars(board.link.stats))
    feed.start_reader()
    try:
        _pump(feed, 0.5)
        runner.start()
        _pump(feed, span + 0.2)
        runner.stop()
        _clear(board)
        # a late hang ends in its watchdog reset, a late port loss in the port coming back
        _pump(feed, 8.0, until=lambda: not _hung(board) and link.connected)
        _pump(feed, 1.5)
        n = len(board.boots)
        feed.stop()
        _pump(feed, 1.5)
        if len(board.boots) != n:
            raise AssertionError(f"seed {seed}: the board reset after the faults were cleared: boots "
                                 f"{[(b.cause, b.exit_code) for b in board.boots[n0:]]}")
    finally:
        runner.stop()
        _clear(board)
        feed.close()
    session.finish(session.now)
    truth = {k: v - stats0.get(k, 0) for k, v in vars(board.link.stats).items() if isinstance(v, int)}
    loaded = load(rec_path)
    frames = [f for f in Decoder().feed(b"".join(r.payload for r in read_recording(rec_path)[0]
                                                   if r.kind == Kind.RX)) if isinstance(f, Frame)]
    return Outcome(seed, rec_path, loaded.session.ledger.report(), session.ledger.report(),
                   list(runner.applied), [b.cause for b in board.boots[n0:]], truth, frames,
                   loaded.session.stats.corrupt_segments)


def check(out: Outcome) -> list[str]:
    """Every way the recording's ledger disagrees with itself or with the board's ground truth;
    empty when it balances exactly, explains everything and matches what the board did."""
    bad: list[str] = []
    rep, tot, faults, link = out.report, out.report.total, out.faults, out.link
    if rep.verdict != "ok" or tot.unexplained or not tot.balanced:
        bad.append(f"verdict {rep.verdict}: {tot.line()} {tot.reasons}")
    for b in rep.boots:
        for name, x in b["streams"].items():
            if not x["balanced"] or x["unexplained"]:
                bad.append(f"boot {b['session']} {name}: not balanced or unexplained: {x}")
    if out.live.total.as_dict() != tot.as_dict():
        bad.append(f"live ledger {out.live.total.line()} != recording's {tot.line()}")
    # boots: one per power-on or reset the runner made, each reporting the cause it had
    if len(rep.boots) != len(out.causes):
        bad.append(f"{len(rep.boots)} boots in the ledger, the board booted {len(out.causes)} times")
    hellos: dict[int, int] = {}
    for f in out.frames:
        if f.type == wire.T_HELLO:
            hellos.setdefault(f.boot_id, f.hello().get("reset_cause"))
    for b, cause in zip(rep.boots, out.causes):
        said = hellos.get(int(b["boot_id"], 16))
        if said is not None and said != cause:
            bad.append(f"boot {b['session']}: HELLO says reset cause {said}, the board's was {cause}")
    # the final boot: its STATUS after the STOP is the device's own count of everything
    last = rep.boots[-1] if rep.boots else None
    st = [f for f in out.frames if f.type == wire.T_STATUS and last and f.boot_id == int(last["boot_id"], 16)]
    if not st:
        bad.append("no STATUS from the final boot")
    elif last["from_boot"]:
        final = st[-1].status()
        hello = next(f.hello() for f in out.frames if f.type == wire.T_HELLO and f.boot_id == st[-1].boot_id)
        names = {s["id"]: s["name"] for s in hello["streams"]}
        batch = {s["id"]: s["batch"] for s in hello["streams"]}
        for x in final.streams:
            L, b = last["streams"][names[x.stream]], batch[x.stream]
            want = {"produced": b * (x.frames_built + x.frames_skipped), "dropped_device": b * x.frames_dropped,
                    "skipped_overrun": b * x.frames_skipped, "not_reported": 0}
            got = {k: L[k] for k in want}
            if got != want:
                bad.append(f"final boot {names[x.stream]}: ledger {got} != device STATUS {want}")
            marks = L["missing_overrun"] + L["missing_sensor"] + L["missing_mixed"]
            if marks > x.missing_overrun + x.missing_sensor:
                bad.append(f"final boot {names[x.stream]}: {marks} marks received > "
                           f"{x.missing_overrun + x.missing_sensor} the device marked")
    # the link: what the bridge did to the bytes is the only source of lost_link / lost_port_gone
    torn = faults.get("port_loss", 0) * 2 + faults.get("reset", 0) + faults.get("hang", 0)
    damaged = link.get("bits_flipped", 0) + link.get("bytes_dropped", 0)
    if out.corrupt_segments > 2 * damaged + torn:
        bad.append(f"{out.corrupt_segments} corrupt segments from {damaged} damaged bytes and {torn} torn frames")
    if tot.lost_link and not out.corrupt_segments:
        bad.append(f"lost_link {tot.lost_link} with no corrupt segment")
    if tot.lost_port_gone and not faults.get("port_loss"):
        bad.append(f"lost_port_gone {tot.lost_port_gone} but the port never went away")
    if link.get("lost_while_disconnected", 0) >= 1000 and not tot.lost_port_gone:
        bad.append(f"{link['lost_while_disconnected']} bytes lost while the port was gone, lost_port_gone 0")
    if tot.lost_recording or tot.lost_before_hello:
        bad.append(f"a clean recording lost samples: {tot.line()}")
    # sensors: samples marked missing for a sensor only on a stream whose chip had a sensor fault
    touched = {e.args[0] for e in out.applied if fault_kind(e) in ("unplug", "nack")}
    stuck = bool(faults.get("stuck"))
    kinds = {s["name"]: s["sensor"] for s in CONFIG["streams"]}
    # a boot whose HELLO the faults destroyed names its streams by id: stream0, stream1, ...
    kinds.update({f"stream{i}": s["sensor"] for i, s in enumerate(CONFIG["streams"])})
    for name, x in rep.streams.items():
        chip = kinds.get(name.split("#")[0])
        # a chip whose sample is a conversion the loop starts one period ahead (the SHT31's single
        # shot) NACKs a read that comes before the conversion ends: after a slot the loop took late
        # (the device's own overrun marks or skips show it was), the next read can be that early
        late = x.missing_overrun + x.missing_mixed + x.skipped_overrun
        if x.missing_sensor and not (chip in touched or stuck and chip in CHIPS or chip in CONVERSION and late):
            bad.append(f"{name} ({chip}): {x.missing_sensor} samples missing for a sensor no fault touched")
    return bad


def summary(out: Outcome) -> str:
    """One line per ledger line with samples in it, the faults and the link's ground truth."""
    tot = out.report.total
    lines = [f"seed {out.seed}: {len(out.causes)} boots, faults {out.faults}",
             f"  link truth: {out.link}, corrupt segments {out.corrupt_segments}",
             f"  total: {tot.line()}"]
    lines += [f"  {n}: {x.line()}" for n, x in out.report.streams.items()]
    return "\n".join(lines)
