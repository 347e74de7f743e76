"""pagerless monitor: watch a board live, record it, replay, export, plot.

  monitor [--port auto|virtual|PATH] [--record FILE]     live view (TUI on a terminal)
  monitor --format jsonl --duration 10 > out.jsonl        machine-readable when piped
  monitor --publish mqtt://HOST[:PORT]/PREFIX             also publish it to an MQTT broker (docs/fleet.md)
  monitor replay FILE [--speed 4]                         same decoder and view, from a recording
  monitor export FILE --csv OUT [--tidy] [--parquet OUT]  every sample in physical units (wide or tidy
                                                          CSV; Parquet for pandas, Polars, DuckDB)
  monitor plot FILE -o out.png                            one panel per channel, gaps left open
  monitor stats FILE [--json]                             the sample ledger per boot and in total

Live keys: s start/stop streaming, r change a rate, m request metadata, b reboot (twice), a start the app
(a board at its REPL: soft reset), ? help, Ctrl-C (or q, Ctrl-]) quit.

Machine-readable output (stdout not a terminal, or --format given): csv and jsonl give one record per
sample, text one line per DATA frame (local time); see host/monitoring/export.py for the columns. --duration S and
--frames N (DATA frames) stop it.

Recordings (--record FILE) hold the bytes exactly as read from the port, in CRC-checked records,
fsynced at least twice a second; see host/recorder.py for the format. If the port vanishes the
monitor waits for the same board (USB serial number, or the virtual board's identity) and carries on
recording. Exit codes: 0 done, 1 failed while running, 2 bad input (port, file, arguments),
130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: the package must be installed (dev.py setup does)
    try:
        import host  # noqa: F401
        import numpy, serial  # noqa: F401,E401
    except ImportError:
        print(f"{Path(__file__).name}: pagerless is not installed in this Python ({sys.executable}); run "
                 "`python3 dev.py setup`, then use .venv/bin/pagerless-monitor (or activate .venv)", file=sys.stderr)
        sys.exit(2)

from host.errors import FlashError  # noqa: E402
from host.device.recording import RecordingError  # noqa: E402
from host.fleet import cli as fleet_cli  # noqa: E402
from host.fleet.topics import FleetError  # noqa: E402

def _prog_name() -> str:
    """The name the monitor was run as (pagerless-monitor, monitor.py), for --help and messages."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return name if name in ("pagerless-monitor", "monitor.py") else "monitor.py"


PROG = _prog_name()
SUBCOMMANDS = ("live", "replay", "export", "plot", "stats")
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class CliError(Exception):
    """Bad input the user can fix; printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (`monitor.py live: error: ...`), exit code 2, no usage dump."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _number(kind, test, what: str):
    """An argparse type: `kind` (int/float) for which `test` holds, else a one-line usage error."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value != value or not test(value):  # NaN fails every test
            raise argparse.ArgumentTypeError(f"{text!r}: must be {what}")
        return value
    parse.__name__ = kind.__name__
    return parse


_POSITIVE_S = _number(float, lambda v: 0 < v < float("inf"), "a number of seconds above 0")
_POSITIVE_INT = _number(int, lambda v: v >= 1, "a whole number of at least 1")
_SPEED = _number(float, lambda v: 0 <= v < float("inf"), "0 (as fast as possible) or above")
_RATE = _number(float, lambda v: 0 < v < float("inf"), "above 0")


# ---------------------------------------------------------------- argument parsing

def build_parser() -> argparse.ArgumentParser:
    epilog = "\n\n".join(__doc__.split("\n\n")[1:]).replace("%", "%%").replace("\n  monitor ", "\n  %(prog)s ")
    p = _Parser(prog=PROG, description=__doc__.split("\n\n")[0],
                                epilog=epilog.replace("  monitor ", "  %(prog)s ", 1),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", metavar="{live,replay,export,plot,stats}", parser_class=_Parser)

    live = sub.add_parser("live", help="watch a board (default when no subcommand is given)",
                          description="Watch a board live: TUI on a terminal, records otherwise.")
    live.add_argument("--port", default="auto",
                      help="auto (the one board found), virtual (the running virtual board), or a device "
                           "path / pyserial URL (default: auto)")
    live.add_argument("--board", default=None, help="board definition name to pick with --port auto")
    live.add_argument("--baud", type=_POSITIVE_INT, default=115200, help="line rate for UART bridges (default 115200)")
    live.add_argument("--line-rate", type=_RATE, default=None, metavar="BYTES_PER_S",
                      help="payload bytes/s the link carries, for the 'share of line' figure "
                           "(default: from the board definition once HELLO names the board)")
    live.add_argument("--record", metavar="FILE", help="append everything received to this recording")
    _add_output_args(live)
    live.add_argument("--frames", type=_POSITIVE_INT, default=None, metavar="N", help="stop after N DATA frames")
    live.add_argument("--no-hello", action="store_true", help="do not ask the board for metadata on connect")
    live.add_argument("--start-app", action="store_true",
                      help="if the board sits at its REPL (friendly or raw), start the app (soft reset) "
                           "instead of only saying so (key a in the live view)")
    fleet_cli.add_publish_args(live)

    rp = sub.add_parser("replay", help="play a recording through the same decoder and view")
    rp.add_argument("file")
    rp.add_argument("--speed", type=_SPEED, default=1.0,
                    help="1 = real time, 0 = as fast as possible (default 1; piped output is always fast)")
    _add_output_args(rp)
    rp.add_argument("--frames", type=_POSITIVE_INT, default=None, metavar="N", help="stop after N DATA frames")

    ex = sub.add_parser("export", help="write every sample in physical units as CSV and/or Parquet",
                        description="Write every sample in physical units. CSV is wide by default (a row per "
                                    "sample, a column per stream.channel), tidy with --tidy (a row per sample "
                                    "and channel); Parquet is always tidy and carries the HELLOs, the board and "
                                    "the ledger verdict in its metadata (host/monitoring/tidy.py).")
    ex.add_argument("file")
    ex.add_argument("--csv", metavar="OUT", help="output CSV ('-' for stdout)")
    ex.add_argument("--tidy", action="store_true",
                    help="tidy (long) CSV: t_host, boot_id, session, stream, seq, t_device_s, channel, value, unit")
    ex.add_argument("--parquet", metavar="OUT", help="output Parquet file (tidy columns, recording metadata)")
    ex.add_argument("--stream", default=None, help="only this stream (by name)")

    pl = sub.add_parser("plot", help="plot every channel of a recording (gaps stay gaps)")
    pl.add_argument("file")
    pl.add_argument("-o", "--output", required=True, metavar="OUT", help="image file (png, svg, pdf)")
    pl.add_argument("--dpi", type=_POSITIVE_INT, default=100)

    st = sub.add_parser("stats", help="summarise a recording: counters, sessions, reconciliation")
    st.add_argument("file")
    st.add_argument("--json", action="store_true", help="machine-readable summary")
    return p


def _add_output_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("jsonl", "csv", "text"), default=None,
                   help="machine-readable output instead of the TUI (default when stdout is not a terminal: "
                        "jsonl)")
    p.add_argument("--duration", type=_POSITIVE_S, default=None, metavar="S", help="stop after S seconds")


def parse_args(argv: list[str]) -> argparse.Namespace:
    if not argv or (argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help")):
        argv = ["live", *argv]
    return build_parser().parse_args(argv)


# ---------------------------------------------------------------- commands

def _board_line_rate(board: str) -> float | None:
    """The default line rate of the board the HELLO names (the live view looks it up the same way)."""
    from host.monitoring.feeds import board_line_rate

    return board_line_rate(board)


def _headless(feed, fmt: str, duration: float | None, frames: int | None, out=None) -> int:
    """Machine-readable output loop (live or replay)."""
    from host.monitoring.export import make_sink

    out = sys.stdout if out is None else out
    session = feed.session
    sink = make_sink(fmt, out)
    logs_to = sys.stderr if fmt == "csv" else None
    seen = 0
    n_frames = 0
    t_end = None if duration is None else time.monotonic() + duration
    while True:
        batches = feed.poll(0.1)
        for b in batches:
            sink.batch(b, session)
            n_frames += 1
            if frames is not None and n_frames >= frames:
                break
        for line in session.log_since(seen):
            if logs_to is not None:
                print(f"{PROG}: [{line.source}] {line.text}", file=logs_to)
            else:
                sink.log(line)
        seen = session.log_count
        if session.line_rate is None and session.device.board:
            session.line_rate = _board_line_rate(session.device.board)
        out.flush()
        if frames is not None and n_frames >= frames:
            return EXIT_OK
        if t_end is not None and time.monotonic() >= t_end:
            return EXIT_OK
        if getattr(feed, "finished", False):
            return EXIT_OK


def _use_tui(args) -> bool:
    return args.format is None and sys.stdout.isatty() and sys.stdin.isatty()


def cmd_live(args) -> int:
    from host.device import ports
    from host.device.link import Link, identify, locator_for
    from host.monitoring.feeds import LiveFeed
    from host.device.recording import Recorder
    from host.monitoring.session import Session

    path = ports.resolve_port(args.port, args.board)
    identity = identify(path)
    link = Link(path, args.baud, locate=locator_for(identity))
    link.open()  # LinkError (not found / busy) -> one line, exit 2
    recorder = publisher = None
    try:
        if args.record:
            recorder = Recorder(args.record)
            if recorder.repaired is not None and not recorder.repaired.clean:
                rep = recorder.repaired
                print(f"{PROG}: {args.record}: cut a torn tail of {rep.torn_bytes} bytes before appending",
                      file=sys.stderr)
            recorder.meta({"port": path, "identity": str(identity), "baud": args.baud, "tool": "monitor",
                           "started": time.time()})
        publisher = fleet_cli.start_publisher(args, args.port, identity)  # FleetError: one line
    except BaseException:
        link.close()
        raise
    session = Session(line_rate=args.line_rate)
    feed = LiveFeed(link, session, recorder, hello_on_connect=not args.no_hello, start_app=args.start_app)
    if publisher is not None:
        publisher.attach(feed)
    feed.start_reader()
    try:
        if _use_tui(args):
            from host.monitoring.screen import MonitorApp

            app = MonitorApp(feed, f"{path} ({identity})", duration=args.duration)
            app.run()
            if app.failure is not None:
                raise app.failure
            return app.return_code or EXIT_OK
        return _headless(feed, args.format or "jsonl", args.duration, args.frames)
    finally:
        feed.close()
        if publisher is not None:
            print(f"{PROG}: {publisher.close()}", file=sys.stderr)
        if recorder is not None:
            print(f"{PROG}: recorded {recorder.records_written} records to {args.record}", file=sys.stderr)


def _load(path: str, on_batch=None):
    from host.monitoring.export import load

    loaded = load(path, on_batch=on_batch)
    _warn_damage(path, loaded.report)
    return loaded


def _warn_damage(path: str, report) -> None:
    if report.torn_bytes:
        print(f"{PROG}: warning: {path}: torn tail of {report.torn_bytes} bytes ignored "
              f"(recording was cut short)", file=sys.stderr)
    if report.corrupt:
        print(f"{PROG}: warning: {path}: {report.corrupt_bytes} corrupt bytes in {len(report.corrupt)} "
              f"region(s) skipped (first at offset {report.corrupt[0][0]})", file=sys.stderr)


def cmd_replay(args) -> int:
    from host.monitoring.feeds import ReplayFeed
    from host.device.recording import open_recording
    from host.monitoring.session import Session

    session = Session()
    with open_recording(args.file) as records:  # streamed: damage is known once it has been read
        try:
            if _use_tui(args):
                from host.monitoring.screen import MonitorApp

                feed = ReplayFeed(records, session, speed=args.speed)
                app = MonitorApp(feed, f"replay {args.file}", duration=args.duration)
                app.run()
                return app.return_code or EXIT_OK
            feed = ReplayFeed(records, session, speed=0)
            return _headless(feed, args.format or "jsonl", args.duration, args.frames)
        finally:
            _warn_damage(args.file, records.report)


def cmd_export(args) -> int:
    from host.monitoring.export import export_csv
    from host.monitoring.tidy import export_parquet, export_tidy_csv

    if args.csv is None and args.parquet is None:
        raise CliError("export needs --csv OUT and/or --parquet OUT")
    if args.tidy and args.csv is None:
        raise CliError("--tidy shapes the CSV: give --csv OUT too (Parquet is always tidy)")
    loaded = _load(args.file)
    if args.stream is not None and args.stream not in {s.name for s in loaded.session.streams.values()}:
        known = ", ".join(s.name for s in loaded.session.streams.values()) or "none"
        raise CliError(f"no stream named {args.stream!r} in {args.file} (streams: {known})")
    write_csv = export_tidy_csv if args.tidy else export_csv
    what = "rows (sample x channel)" if args.tidy else "samples"
    if args.csv == "-":
        write_csv(loaded, sys.stdout, args.stream)
    elif args.csv is not None:
        try:
            with open(args.csv, "w", newline="") as f:
                rows = write_csv(loaded, f, args.stream)
        except OSError as e:
            raise CliError(f"{args.csv}: cannot write ({e.strerror or e})") from None
        print(f"{PROG}: wrote {rows} {what} to {args.csv}", file=sys.stderr)
    if args.parquet is not None:
        try:
            rows = export_parquet(loaded, args.parquet, args.stream)
        except OSError as e:
            raise CliError(f"{args.parquet}: cannot write ({e.strerror or e})") from None
        print(f"{PROG}: wrote {rows} rows (sample x channel) to {args.parquet}", file=sys.stderr)
    return EXIT_OK


def cmd_plot(args) -> int:
    from host.monitoring.plot import Series, check_output, plot

    check_output(args.output)  # a format matplotlib cannot write is the user's to fix, before any work
    series = Series()
    loaded = _load(args.file, on_batch=series.add)
    n = plot(series, loaded.session, args.output, title=str(args.file), dpi=args.dpi)
    print(f"{PROG}: wrote {n} panels to {args.output}", file=sys.stderr)
    return EXIT_OK


def cmd_stats(args) -> int:
    from host.monitoring.export import stats_text

    loaded = _load(args.file)
    if args.json:
        s = loaded.session
        st = s.stats
        out = s.ledger.report().as_json()  # the schema docs/protocol.md ("Sample ledger") documents
        out["recording"] = {"records": loaded.report.records, "torn_bytes": loaded.report.torn_bytes,
                            "corrupt_bytes": loaded.report.corrupt_bytes}
        out["link"] = {"sessions": st.sessions, "bytes": st.bytes, "frames_ok": st.frames_ok,
                       "crc_errors": st.crc_errors, "framing_errors": st.framing_errors,
                       "invalid_frames": st.invalid_frames, "missing": st.missing, "duplicates": st.duplicates,
                       "link_events": s.link_events}
        print(json.dumps(out, indent=1))
    else:
        sys.stdout.write(stats_text(loaded, args.file))
    return EXIT_OK


COMMANDS = {"live": cmd_live, "replay": cmd_replay, "export": cmd_export, "plot": cmd_plot, "stats": cmd_stats}


# ---------------------------------------------------------------- the one error boundary

def main(argv: list[str] | None = None) -> int:
    from host.device.link import LinkError
    from host.monitoring.plot import PlotError
    from host.sensors.units import UnitsError

    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return COMMANDS[args.cmd](args)
    except (CliError, RecordingError, LinkError, FlashError, PlotError, UnitsError, FleetError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return getattr(e, "exit_code", EXIT_USAGE) if isinstance(e, FlashError) else EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        try:
            sys.stdout = open("/dev/null", "w")  # the reader went away (| head): not an error
        except OSError:
            pass
        return EXIT_OK
    except OSError as e:
        print(f"{PROG}: error: {e.filename + ': ' if e.filename else ''}{e.strerror or e}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as e:  # a bug: still one line, but say so
        print(f"{PROG}: internal error: {type(e).__name__}: {e} (please report this)", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
